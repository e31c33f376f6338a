"""Reaching the endpoint: URLs no request could reach (refused before anything is sent),
how the key is sent (or refused), proxies from the environment, and a private CA. On real
servers on 127.0.0.1 (an HTTPS one with a CA made here by the `openssl` command)."""

from __future__ import annotations

import base64
import contextlib
import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from pipeline.cli import main
from pipeline.config import load_job_text
from pipeline.errors import SetupError
from pipeline.run import EXIT_AUTH, EXIT_ENDPOINT, EXIT_OK, EXIT_SETUP, prepare_job
from tests.fake_server import Knobs, running_server
from tests.helpers import job_config, make_queries, run, write_grouped_parquet

KEY = "sk-test-KEY-3141592653"


@pytest.fixture
def input_path(tmp_path):
    return write_grouped_parquet(tmp_path / "in.parquet", make_queries(4, 6, seed=61))


@pytest.fixture
def no_keys(monkeypatch):
    for name in ("JINA_API_KEY", "RERANK_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "url, says",
    [
        ("http://127.0.0.1:99999", "has an invalid port"),
        ("http://127.0.0.1:http", "has an invalid port"),
        ("http://:8080", "has no host"),
        ("https://", "has no host"),
    ],
)
def test_a_base_url_no_request_could_reach_is_a_setup_error(tmp_path, url, says):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(1, 3))
    with pytest.raises(SetupError, match=f"provider.base_url: .* {says}"):
        prepare_job(job_config(path, tmp_path / "out", url))


def test_the_command_line_exits_2_for_a_url_no_request_could_reach(input_path, tmp_path, capsys):
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{input_path}"\n[provider]\nkind = "vllm"\n'
        f'base_url = "http://127.0.0.1:70000"\n[output]\ndir = "{tmp_path}/out"\n'
    )
    assert main(["run", str(job), "--quiet"]) == EXIT_SETUP
    err = capsys.readouterr().err
    assert "has an invalid port" in err and "Traceback" not in err


def test_a_hosted_kind_needs_its_key_even_with_a_base_url(input_path, tmp_path, no_keys):
    cfg = load_job_text(
        f'[input]\npath = "{input_path}"\n[output]\ndir = "{tmp_path}/o"\n'
        '[provider]\nkind = "jina"\nbase_url = "https://api.jina.ai"\n'
    )
    with pytest.raises(SetupError, match=r"JINA_API_KEY is not set: export it") as caught:
        prepare_job(cfg)
    assert 'provider.api_key_env = "" if the server needs no key' in str(caught.value)


async def test_a_hosted_kind_sends_its_key_to_a_base_url(input_path, out_dir, monkeypatch):
    monkeypatch.setenv("JINA_API_KEY", KEY)
    async with running_server(Knobs(require_key=KEY)) as server:
        outcome = await run(
            job_config(input_path, out_dir, server.base_url, provider__api_key_env=None)
        )
    assert outcome.exit_code == EXIT_OK
    assert {r.authorization for r in server.log} == {f"Bearer {KEY}"}


async def test_an_empty_api_key_env_sends_no_key(input_path, out_dir, monkeypatch):
    monkeypatch.setenv("JINA_API_KEY", KEY)
    async with running_server() as server:
        cfg = job_config(input_path, out_dir, server.base_url, provider__api_key_env='""')
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    assert all("Authorization" not in r.headers for r in server.log)


@pytest.mark.parametrize(
    "header, scheme, sent",
    [
        ("X-Api-Key", "", KEY),
        ("api-key", "", KEY),
        ("Authorization", "Token", f"Token {KEY}"),
    ],
)
async def test_the_key_goes_in_the_header_and_scheme_asked_for(
    input_path, out_dir, monkeypatch, header, scheme, sent
):
    monkeypatch.setenv("GATEWAY_KEY", KEY)
    knobs = Knobs(require_key=KEY, auth_header=header, auth_scheme=scheme)
    async with running_server(knobs) as server:
        cfg = job_config(
            input_path,
            out_dir,
            server.base_url,
            provider__api_key_env="GATEWAY_KEY",
            provider__api_key_header=header,
            provider__api_key_scheme=f'"{scheme}"',
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK, outcome.message
    assert {r.headers[header] for r in server.log} == {sent}
    if header != "Authorization":
        assert all("Authorization" not in r.headers for r in server.log)


def test_a_header_name_that_is_not_one_is_a_config_error(input_path, tmp_path):
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="provider.api_key_header = 'X Api Key'"):
        job_config(input_path, tmp_path / "o", provider__api_key_header='"X Api Key"')


async def test_a_401_when_no_key_was_sent_names_no_variable(input_path, out_dir, no_keys):
    async with running_server(Knobs(require_key=KEY)) as server:
        cfg = job_config(
            input_path, out_dir, server.base_url, kind="vllm", provider__api_key_env=None
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_AUTH
    assert "no API key was sent: set provider.api_key_env" in outcome.message
    assert "$" not in outcome.message and "RERANK_API_KEY" not in outcome.message


class ForwardProxy:
    """A plain-HTTP forward proxy (no CONNECT): it logs each request's target as sent in
    absolute form, and its Proxy-Authorization, and forwards it."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str | None]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.log.append((request.raw_path, request.headers.get("Proxy-Authorization")))
        drop = {"host", "proxy-authorization", "proxy-connection", "content-length"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in drop}
        async with (
            aiohttp.ClientSession() as session,
            session.post(request.raw_path, data=await request.read(), headers=headers) as resp,
        ):
            return web.Response(
                status=resp.status,
                body=await resp.read(),
                headers={"Content-Type": resp.headers.get("Content-Type", "application/json")},
            )


@contextlib.asynccontextmanager
async def running_proxy():
    proxy = ForwardProxy()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    proxy.url = f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    try:
        yield proxy
    finally:
        await runner.cleanup()


async def test_http_proxy_and_no_proxy_are_honoured(input_path, tmp_path, monkeypatch):
    async with running_server() as server, running_proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://me:pr0xy-PASS@{proxy.url}")
        monkeypatch.setenv("NO_PROXY", "")  # nothing bypasses it, 127.0.0.1 included
        through = await run(job_config(input_path, tmp_path / "a", server.base_url))
        assert through.exit_code == EXIT_OK
        assert len(proxy.log) == len(server.log) == 4
        credentials = "Basic " + base64.b64encode(b"me:pr0xy-PASS").decode()
        assert set(proxy.log) == {(f"{server.base_url}/v1/rerank", credentials)}
        assert all("Proxy-Authorization" not in r.headers for r in server.log)
        for path in (tmp_path / "a").rglob("*"):
            assert not path.is_file() or b"pr0xy-PASS" not in path.read_bytes()

        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        direct = await run(job_config(input_path, tmp_path / "b", server.base_url))
        assert direct.exit_code == EXIT_OK
        assert len(proxy.log) == 4 and len(server.log) == 8


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory) -> tuple[Path, ssl.SSLContext]:
    """(the CA's PEM file, a server context with a certificate for 127.0.0.1 it signed)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test CA")
    d = tmp_path_factory.mktemp("ca")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=rerank-pipeline test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)  # fmt: skip
    openssl(
        "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d
    )
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(d / "server.pem", d / "server.key")
    return d / "ca.pem", context


async def test_a_private_ca_is_trusted_through_ca_bundle(input_path, tmp_path, private_ca):
    ca, context = private_ca
    async with running_server(ssl_context=context) as server:
        untrusted = await run(job_config(input_path, tmp_path / "a", server.base_url))
        trusted = await run(
            job_config(input_path, tmp_path / "b", server.base_url, provider__ca_bundle=f'"{ca}"')
        )
    assert untrusted.exit_code == EXIT_ENDPOINT
    assert "is not trusted" in untrusted.message
    assert "set provider.ca_bundle to that CA's PEM file" in untrusted.message
    assert trusted.exit_code == EXIT_OK, trusted.message
    assert len([r for r in server.log if r.status == 200]) == 4


@pytest.mark.parametrize("content, says", [(None, "no such file"), ("not a cert", "no PEM")])
def test_a_ca_bundle_that_is_not_one_is_a_setup_error(input_path, tmp_path, content, says):
    bundle = tmp_path / "ca.pem"
    if content is not None:
        bundle.write_text(content)
    cfg = job_config(
        input_path, tmp_path / "o", "https://127.0.0.1:1", provider__ca_bundle=f'"{bundle}"'
    )
    with pytest.raises(SetupError, match=f"provider.ca_bundle .*{says}"):
        prepare_job(cfg)
