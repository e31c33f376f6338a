#!/usr/bin/env python
"""Build the rerank-pipeline sample data set (deterministic, offline).

Usage:
    python sample_data/build_sample.py [--out DIR]

Writes into DIR (default: the directory of this script):
    candidates.parquet   grouped: query_id, query, documents: list<struct<id, text>>
    candidates.jsonl     grouped: query_id, query, documents: [text], doc_ids: [id]
    pairs.parquet        pairs:   query_id, query, doc_id, text, first_stage_rank, first_stage_score
    pairs.jsonl.gz       pairs, gzip JSONL (mtime=0)
    qrels.txt            TREC qrels: "qid 0 docid rel", rel in {0,1,2,3}

Everything is composed from the hand-written sentence pools below with a fixed
seed, so running the script again reproduces byte-identical files (for the same
pyarrow version; the Parquet footer records the writer version).
The text was written for this project and is released under CC0 1.0.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20240607

# ---------------------------------------------------------------------------
# Topics. R = sentences that answer the query (use its key terms),
# P = on-topic sentences that do not answer the exact need.
# nb = neighbouring topics (hard negatives share vocabulary / domain).
# ---------------------------------------------------------------------------
TOPICS = [
    dict(
        id="q01",
        lang="en",
        domain="product support",
        nb=["q10", "q18"],
        emoji=[],
        query="reset wifi router to factory settings",
        R=[
            "To reset a Wi-Fi router to factory settings, press and hold the small reset button on the back for about 10 seconds until the lights blink.",
            "A factory reset erases your custom Wi-Fi name, password and port forwarding rules, so the router returns to its default settings.",
            "After the reset, connect to the default network printed on the router label and log in to the admin page at 192.168.0.1 or 192.168.1.1.",
            "If the reset button is recessed, use a straightened paper clip and keep the router powered on while you hold it.",
            "Most routers also offer a factory reset option in the web interface under System, Administration or Backup & Restore settings.",
            "Wait two to three minutes after a factory reset before reconnecting, because the router needs time to reboot and load its default settings.",
        ],
        P=[
            "Restarting the router by unplugging it for 30 seconds is not the same as a reset; it keeps all your settings.",
            "Slow Wi-Fi is often caused by channel congestion, so try switching to a less crowded channel in the 5 GHz band.",
            "Updating the router firmware can fix dropped connections and close security vulnerabilities.",
            "Place the router in a central, elevated spot away from microwaves and thick walls for better coverage.",
            "Before changing any settings, export a backup of the current configuration so you can restore it later.",
        ],
    ),
    dict(
        id="q02",
        lang="en",
        domain="travel",
        nb=["q14"],
        emoji=["🌸"],
        query="best time to visit kyoto for cherry blossoms",
        R=[
            "Cherry blossoms in Kyoto usually reach full bloom in late March to early April, making this the best time to visit.",
            "The exact timing of Kyoto's cherry blossom season shifts by a week or two each year, so check the bloom forecast before you book.",
            "For fewer crowds, visit Kyoto's famous cherry blossom spots such as the Philosopher's Path and Maruyama Park early in the morning.",
            "Late-blooming trees at Ninna-ji Temple let visitors see cherry blossoms in Kyoto until mid-April.",
            "Hotels in Kyoto fill up quickly during cherry blossom season, so book at least three months ahead.",
            "Evening illuminations at Kiyomizu-dera and along the Shirakawa canal make spring nights in Kyoto especially beautiful.",
        ],
        P=[
            "Autumn is another popular time to visit Kyoto, when the maple leaves turn red in November.",
            "The Japan Rail Pass covers the Shinkansen between Tokyo and Kyoto but not most city buses.",
            "Kyoto has over 1,600 temples, so plan a route that groups nearby sights together.",
            "Summer in Kyoto is hot and humid, with the Gion Matsuri festival taking place throughout July.",
            "Day trips from Kyoto to Nara and Osaka take less than an hour by train.",
        ],
    ),
    dict(
        id="q03",
        lang="en",
        domain="cooking",
        nb=["q12"],
        emoji=["🥚"],
        query="how long to boil eggs for soft yolk",
        R=[
            "For a soft, runny yolk, boil eggs for 6 to 7 minutes, starting the timer once the eggs go into boiling water.",
            "Lower cold eggs gently into already boiling water and cook them for 6 minutes for a jammy, soft yolk.",
            "Transfer the boiled eggs to an ice bath right away to stop the cooking so the yolk stays soft.",
            "Large eggs need about 30 seconds longer than medium eggs to reach the same soft yolk.",
            "At high altitude water boils at a lower temperature, so add a minute or two to get a soft-boiled egg.",
            "A 5-minute egg has a liquid yolk and a barely set white, while 7 minutes gives a soft but creamy yolk.",
        ],
        P=[
            "Hard-boiled eggs need 10 to 12 minutes and are easiest to peel when they are about a week old.",
            "Poached eggs cook in simmering water with a splash of vinegar for about three minutes.",
            "Store eggs in the refrigerator and use them within three to five weeks of purchase.",
            "Scrambled eggs stay creamy if you cook them slowly over low heat and take them off early.",
            "A green ring around the yolk means the egg was overcooked.",
        ],
    ),
    dict(
        id="q04",
        lang="en",
        domain="programming",
        nb=["q09", "q13", "q17"],
        emoji=[],
        query="python remove duplicates from list keep order",
        R=[
            "To remove duplicates from a list in Python and keep the original order, use list(dict.fromkeys(items)).",
            "Since Python 3.7 dictionaries preserve insertion order, so dict.fromkeys is the simplest way to deduplicate a list while keeping order.",
            "Converting a list to a set removes duplicates but does not keep the order of the elements.",
            "For unhashable items such as dicts, loop over the list and keep the ones you have not seen yet to remove duplicates in order.",
            "A common idiom is seen = set() followed by [x for x in items if not (x in seen or seen.add(x))], which keeps the first occurrence.",
            "pandas users can call pd.unique or drop_duplicates, both of which keep the order of first appearance.",
        ],
        P=[
            "Python sets are unordered collections of unique, hashable elements.",
            "Use sorted() to return a new sorted list without modifying the original list.",
            "List comprehensions are usually faster than equivalent for loops that call append.",
            "collections.Counter counts how often each element appears in a list.",
            "To remove an item from a list by value, call list.remove, which deletes only the first match.",
        ],
    ),
    dict(
        id="q05",
        lang="en",
        domain="health",
        nb=["q15", "q07"],
        emoji=[],
        query="symptoms of vitamin d deficiency in adults",
        R=[
            "Common symptoms of vitamin D deficiency in adults include fatigue, bone pain, muscle weakness and low mood.",
            "Many adults with vitamin D deficiency have no symptoms at all, so the condition is often found with a blood test.",
            "Long-term vitamin D deficiency can lead to osteomalacia, a softening of the bones that causes aches in the hips and legs.",
            "Frequent infections and slow wound healing may also be signs of low vitamin D levels in adults.",
            "A blood level of 25-hydroxyvitamin D below 12 ng/mL is generally considered a deficiency.",
            "Adults who rarely go outside, have darker skin or live far from the equator are at higher risk of vitamin D deficiency.",
        ],
        P=[
            "Vitamin D is made in the skin when it is exposed to sunlight and is also found in oily fish and fortified milk.",
            "Most adults are advised to take 600 to 800 IU of vitamin D per day.",
            "Taking too much vitamin D from supplements can raise calcium levels and cause nausea.",
            "Iron deficiency causes tiredness, pale skin and shortness of breath.",
            "Vitamin B12 deficiency can cause tingling in the hands and feet.",
        ],
    ),
    dict(
        id="q06",
        lang="en",
        domain="tax",
        nb=["q11", "q08"],
        emoji=[],
        query="can i deduct home office expenses as self employed",
        R=[
            "Self-employed people can deduct home office expenses if part of the home is used regularly and exclusively for business.",
            "The simplified method lets self-employed taxpayers deduct 5 dollars per square foot of home office space, up to 300 square feet.",
            "With the regular method you deduct the business share of rent, mortgage interest, utilities and insurance, based on the home office's percentage of your home.",
            "Home office expenses for the self-employed are claimed on Form 8829 and carried over to Schedule C.",
            "A desk in the corner of a guest room that is also used by the family usually does not qualify for the home office deduction.",
            "Employees who work from home cannot deduct home office expenses on their federal return, unlike self-employed workers.",
        ],
        P=[
            "Self-employed workers must pay self-employment tax of 15.3 percent on net earnings.",
            "Keep receipts for business expenses for at least three years after filing your tax return.",
            "Quarterly estimated tax payments are due in April, June, September and January.",
            "Business mileage can be deducted using the standard mileage rate set each year by the IRS.",
            "Health insurance premiums may be deductible for self-employed people who are not eligible for an employer plan.",
        ],
    ),
    dict(
        id="q07",
        lang="en",
        domain="science",
        nb=["q05", "q13"],
        emoji=[],
        query="why is the sky blue rayleigh scattering",
        R=[
            "The sky is blue because of Rayleigh scattering: air molecules scatter the short blue wavelengths of sunlight much more than red ones.",
            "Rayleigh scattering is inversely proportional to the fourth power of the wavelength, so blue light is scattered about five times more than red light.",
            "Violet light is scattered even more than blue, but the sky looks blue because sunlight contains less violet and our eyes are less sensitive to it.",
            "At sunset sunlight travels through more air, so most blue light is scattered away and the sky turns red and orange.",
            "Rayleigh scattering applies to particles much smaller than the wavelength of light, such as nitrogen and oxygen molecules.",
            "Clouds look white rather than blue because their water droplets are large and scatter all wavelengths about equally, which is called Mie scattering.",
        ],
        P=[
            "Sunlight is a mix of colours that a prism can split into a spectrum.",
            "The ocean looks blue partly because water absorbs red light and partly because it reflects the sky.",
            "On Mars the daytime sky appears butterscotch because of fine dust in the atmosphere.",
            "Rainbows form when sunlight is refracted and reflected inside raindrops.",
            "The atmosphere is about 78 percent nitrogen and 21 percent oxygen.",
        ],
    ),
    dict(
        id="q08",
        lang="en",
        domain="finance",
        nb=["q16", "q06"],
        emoji=[],
        query="difference between roth ira and traditional ira",
        R=[
            "The main difference between a Roth IRA and a traditional IRA is when you pay tax: Roth contributions are taxed now, traditional withdrawals are taxed later.",
            "Traditional IRA contributions may be tax-deductible, while Roth IRA withdrawals in retirement are tax-free.",
            "A traditional IRA requires minimum distributions starting at age 73, but a Roth IRA has no required distributions for the original owner.",
            "Roth IRA contributions are limited by income, whereas anyone with earned income can contribute to a traditional IRA.",
            "If you expect a higher tax rate in retirement, a Roth IRA is usually a better choice than a traditional IRA.",
            "A Roth and a traditional IRA share the same annual contribution limit, which is 7,000 dollars in 2024.",
        ],
        P=[
            "A 401(k) is an employer-sponsored retirement plan with a higher contribution limit than an IRA.",
            "Index funds offer low fees and broad diversification for long-term investors.",
            "Withdrawing money from a retirement account before age 59 and a half usually triggers a 10 percent penalty.",
            "A backdoor conversion lets high earners move money into a Roth account.",
            "Rebalancing your portfolio once a year keeps your asset allocation on target.",
        ],
    ),
    dict(
        id="q09",
        lang="en",
        domain="programming",
        nb=["q04", "q17"],
        emoji=[],
        query="git undo last commit but keep changes",
        R=[
            "To undo the last commit but keep your changes, run git reset --soft HEAD~1; the changes stay staged.",
            "git reset HEAD~1 (a mixed reset) undoes the last commit and keeps the changes in your working directory, unstaged.",
            "Avoid git reset --hard if you want to keep your changes, because it discards them from the working tree.",
            "If the commit was already pushed, use git revert to create a new commit that undoes it instead of rewriting history.",
            "To fix the message or add a forgotten file to the last commit, use git commit --amend instead.",
            "If you undo a commit by mistake, git reflog shows the previous HEAD so you can restore it.",
        ],
        P=[
            "git stash saves uncommitted changes so you can switch branches with a clean working tree.",
            "git log --oneline shows a compact history of the commits on the current branch.",
            "Use git checkout -b to create and switch to a new branch in one step.",
            "A merge conflict happens when two branches change the same lines of a file.",
            "git diff --staged shows the changes that will go into the next commit.",
        ],
    ),
    dict(
        id="q10",
        lang="en",
        domain="product support",
        nb=["q01"],
        emoji=["🔋", "📱"],
        query="iphone battery draining fast after update",
        R=[
            "It is normal for an iPhone battery to drain faster for a day or two after an iOS update while the phone re-indexes photos and files.",
            "If your iPhone battery keeps draining fast after the update, check Settings > Battery to see which apps use the most power.",
            "Turning off Background App Refresh and limiting location access can stop fast battery drain after an update.",
            "Check Battery Health in Settings; if the maximum capacity is below 80 percent, the battery may need replacing.",
            "Some users fix battery drain after an update by restarting the iPhone or by resetting all settings.",
            "A bug in a new iOS version can cause fast battery drain, and Apple usually fixes it in the next point update.",
        ],
        P=[
            "Low Power Mode reduces background activity and visual effects to extend battery life.",
            "Optimized Battery Charging learns your routine and delays charging past 80 percent.",
            "To update your iPhone, go to Settings > General > Software Update and tap Download and Install.",
            "If your iPhone will not charge, clean the Lightning or USB-C port and try a different cable.",
            "A cracked screen can be repaired at an Apple Store or an authorised service provider.",
        ],
    ),
    dict(
        id="q11",
        lang="en",
        domain="law",
        nb=["q06"],
        emoji=[],
        query="how much notice does a landlord need to give before entering",
        R=[
            "In most US states a landlord must give at least 24 hours' notice before entering a rental unit, except in emergencies.",
            "Some states, such as California, require 24 hours' written notice before a landlord can enter for repairs or inspections.",
            "A landlord can enter without notice in an emergency such as a fire, a flood or a gas leak.",
            "If your lease sets a longer notice period than state law, the landlord must follow the lease.",
            "Landlords should enter only at reasonable times, usually during normal business hours, and only after giving notice.",
            "Repeated entry without proper notice can count as harassment and may allow a tenant to end the lease.",
        ],
        P=[
            "A security deposit must usually be returned within 14 to 30 days after the tenant moves out.",
            "Tenants should document the condition of the apartment with photos on move-in day.",
            "Landlords must keep rental units habitable, with working heat, water and electricity.",
            "To end a month-to-month tenancy, a tenant usually needs to give 30 days' written notice.",
            "Rent increases often require advance notice, depending on local rent control rules.",
        ],
    ),
    dict(
        id="q12",
        lang="en",
        domain="cooking",
        nb=["q03"],
        emoji=["🍞"],
        query="sourdough starter not rising",
        R=[
            "A sourdough starter that is not rising is often too cold; keep it somewhere around 24 to 27 degrees Celsius.",
            "Feed your sourdough starter with equal weights of flour and water and discard most of it each time so it can rise.",
            "Switching to whole wheat or rye flour gives a sluggish starter more nutrients and usually helps it rise again.",
            "Chlorinated tap water can slow a starter down, so use filtered water or leave tap water out overnight.",
            "A new sourdough starter often bubbles on day two, then stops rising for a few days before it becomes stable.",
            "If your starter is not rising but smells of acetone, it is hungry and needs more frequent feedings.",
        ],
        P=[
            "Sourdough bread needs a long bulk fermentation followed by shaping and a cold proof.",
            "Instant yeast can be mixed directly into the dry ingredients without proofing.",
            "Bake bread in a preheated Dutch oven to trap steam and get a crisp crust.",
            "Store flour in an airtight container in a cool, dry place.",
            "A kitchen scale makes bread recipes much more consistent than measuring cups.",
        ],
    ),
    dict(
        id="q13",
        lang="en",
        domain="machine learning",
        nb=["q04"],
        emoji=[],
        query="difference between precision and recall",
        R=[
            "Precision is the share of retrieved items that are relevant, while recall is the share of relevant items that are retrieved.",
            "High precision means few false positives; high recall means few false negatives.",
            "There is usually a trade-off between precision and recall: lowering the decision threshold raises recall but lowers precision.",
            "The F1 score is the harmonic mean of precision and recall and balances the two.",
            "In search, precision at 10 measures how many of the top ten results are relevant, whereas recall asks how many relevant documents were found at all.",
            "For spam filtering precision matters more, but for disease screening recall is usually more important.",
        ],
        P=[
            "Accuracy can be misleading on imbalanced datasets where one class dominates.",
            "A confusion matrix shows true positives, false positives, true negatives and false negatives.",
            "The ROC curve plots the true positive rate against the false positive rate.",
            "nDCG rewards ranking highly relevant documents near the top of the list.",
            "Cross-validation gives a more reliable estimate of model performance than a single split.",
        ],
    ),
    dict(
        id="q14",
        lang="en",
        domain="travel",
        nb=["q02"],
        emoji=[],
        query="schengen visa requirements for us citizens",
        R=[
            "US citizens do not need a visa to visit the Schengen Area for tourism or business stays of up to 90 days within any 180-day period.",
            "Your US passport should be valid for at least three months beyond your planned departure from the Schengen Area.",
            "US citizens will soon need an ETIAS travel authorisation before visiting Schengen countries, although it is not a visa.",
            "US citizens who want to study or work in a Schengen country for longer than 90 days must apply for a national visa.",
            "Border officers may ask US travellers to show a return ticket, proof of accommodation and enough money for their stay.",
            "The 90-day limit applies to the Schengen Area as a whole, not to each country separately.",
        ],
        P=[
            "The United Kingdom and Ireland are not part of the Schengen Area and have their own entry rules.",
            "Travel insurance that covers medical costs is recommended for trips to Europe.",
            "Eurail passes allow unlimited train travel across many European countries.",
            "Some airlines ask passengers to complete online check-in at least 24 hours before departure.",
            "Many European museums are free on the first Sunday of the month.",
        ],
    ),
    dict(
        id="q15",
        lang="en",
        domain="health",
        nb=["q05"],
        emoji=[],
        query="how much water should i drink a day",
        R=[
            "A common guideline is to drink about 2 litres of water a day, but needs vary with body size, activity and climate.",
            "The US National Academies suggest a total daily fluid intake of about 3.7 litres for men and 2.7 litres for women, including water from food.",
            "You should drink more water on hot days and during exercise to replace the fluid lost through sweat.",
            "Pale yellow urine is a simple sign that you drink enough water each day.",
            "Tea, coffee, milk and water-rich foods like fruit also count towards how much water you drink a day.",
            "Drinking far too much water in a short time can cause hyponatraemia, a dangerous drop in blood sodium.",
        ],
        P=[
            "Thirst is the body's main signal that it needs more fluid.",
            "Sports drinks contain electrolytes that can help during long endurance events.",
            "Sugary soft drinks add calories without making you feel full.",
            "Getting seven to nine hours of sleep a night supports overall health.",
            "Eating plenty of fibre helps digestion and keeps blood sugar stable.",
        ],
    ),
    dict(
        id="q16",
        lang="en",
        domain="finance",
        nb=["q08"],
        emoji=[],
        query="how does compound interest work",
        R=[
            "Compound interest means you earn interest on both your original deposit and the interest already added to it.",
            "With compound interest, 1,000 dollars at 5 percent a year grows to about 1,629 dollars after 10 years.",
            "The formula for compound interest is A = P(1 + r/n)^(nt), where n is the number of compounding periods per year.",
            "The more often interest is compounded, daily instead of yearly for example, the faster your savings grow.",
            "The rule of 72 estimates how long money takes to double: divide 72 by the interest rate.",
            "Compound interest also works against you on credit card debt, where unpaid interest is added to the balance.",
        ],
        P=[
            "Simple interest is calculated only on the original principal.",
            "Savings accounts are usually protected by deposit insurance up to a limit.",
            "Inflation reduces the purchasing power of money over time.",
            "The annual percentage yield shows the effective yearly return on a savings account.",
            "Paying off a high-interest loan early can save money on total interest.",
        ],
    ),
    dict(
        id="q17",
        lang="en",
        domain="programming",
        nb=["q09", "q04"],
        emoji=[],
        query="docker container exits immediately after start",
        R=[
            "A Docker container exits immediately after start when its main process finishes, because the container lives only as long as PID 1.",
            "Run docker logs with the container ID to see why the container exited right after it started.",
            "If the CMD starts a service in the background, the container exits immediately; run the process in the foreground instead.",
            "An exit code of 0 means the command completed normally, while 1 or 127 usually points to an error or a missing binary.",
            "To keep a container running for debugging, start it with docker run -it and a shell, or override the entrypoint.",
            "docker ps -a lists stopped containers together with their exit status and how long ago they exited.",
        ],
        P=[
            "A Dockerfile describes how to build an image layer by layer.",
            "Use docker compose to define and start multi-container applications from a YAML file.",
            "Mount a volume to keep data after a container is removed.",
            "Multi-stage builds keep the final image small by leaving build tools out.",
            "The EXPOSE instruction documents which port the application listens on.",
        ],
    ),
    dict(
        id="q18",
        lang="en",
        domain="home repair",
        nb=["q01"],
        emoji=[],
        query="how to fix a leaking kitchen faucet",
        R=[
            "To fix a leaking kitchen faucet, first turn off the water supply valves under the sink.",
            "Most drips from a single-handle kitchen faucet come from a worn cartridge or O-ring, which you can replace in under an hour.",
            "Take the old cartridge to a hardware store so you can buy an exact replacement for your faucet model.",
            "If the faucet leaks around the base of the spout, replace the O-rings and coat them with plumber's grease.",
            "Older compression faucets usually leak because of a worn rubber washer on the valve seat.",
            "After reassembling the faucet, turn the water back on slowly and check for leaks under the sink.",
        ],
        P=[
            "A running toilet is often caused by a worn flapper that lets water leak into the bowl.",
            "Low water pressure in the kitchen can often be fixed by cleaning the aerator on the faucet.",
            "Clogged kitchen sinks can often be cleared with a plunger or by cleaning the P-trap.",
            "Shut-off valves that have not been used for years may be stiff and can start to drip.",
            "A licensed plumber is needed for most work on gas lines and main water pipes.",
        ],
    ),
    # ----------------------------------------------------------------- German
    dict(
        id="q19",
        lang="de",
        domain="tax",
        nb=["q20"],
        xnb=["q06"],
        emoji=[],
        query="Homeoffice Pauschale Steuererklärung 2023",
        R=[
            "Seit 2023 können Arbeitnehmer in der Steuererklärung eine Homeoffice-Pauschale von 6 Euro pro Tag geltend machen.",
            "Die Homeoffice-Pauschale ist auf 1.260 Euro im Jahr begrenzt, das entspricht 210 Arbeitstagen zu Hause.",
            "Für die Homeoffice-Pauschale brauchen Sie kein separates Arbeitszimmer; ein Schreibtisch in der Küche reicht aus.",
            "Die Pauschale tragen Sie in der Steuererklärung in der Anlage N bei den Werbungskosten ein.",
            "Beachten Sie, dass die Homeoffice-Pauschale mit dem Arbeitnehmer-Pauschbetrag von 1.230 Euro verrechnet wird.",
            "An Tagen mit Homeoffice-Pauschale dürfen Sie grundsätzlich keine Pendlerpauschale für denselben Tag ansetzen.",
        ],
        P=[
            "Die Frist für die Steuererklärung 2023 ohne Steuerberater endete am 2. September 2024.",
            "Belege müssen nicht mehr mitgeschickt werden, sollten aber aufbewahrt werden.",
            "Mit ELSTER können Sie Ihre Steuererklärung kostenlos online beim Finanzamt einreichen.",
            "Die Pendlerpauschale beträgt 30 Cent pro Kilometer, ab dem 21. Kilometer 38 Cent.",
            "Arbeitsmittel wie Laptop und Bürostuhl können als Werbungskosten abgesetzt werden.",
        ],
    ),
    dict(
        id="q20",
        lang="de",
        domain="travel",
        nb=["q19"],
        emoji=[],
        query="Deutschlandticket kündigen Frist",
        R=[
            "Das Deutschlandticket kann monatlich gekündigt werden, die Kündigung muss bis zum 10. des Monats beim Anbieter eingehen.",
            "Wer das Deutschlandticket fristgerecht bis zum 10. kündigt, kann es bis zum Ende des laufenden Monats weiter nutzen.",
            "Die Kündigung des Deutschlandtickets erfolgt bei dem Verkehrsunternehmen, bei dem Sie das Abo abgeschlossen haben, oft direkt in der App.",
            "Bei der Deutschen Bahn kündigen Sie das Deutschlandticket im Kundenkonto unter Meine Abos.",
            "Geht die Kündigung erst nach dem 10. ein, endet das Abo erst zum Ende des Folgemonats.",
            "Bewahren Sie die Kündigungsbestätigung auf, falls später noch eine Abbuchung erfolgt.",
        ],
        P=[
            "Das Deutschlandticket gilt bundesweit in allen Bussen und Bahnen des Nahverkehrs.",
            "Fernverkehrszüge wie ICE und IC sind mit dem Deutschlandticket nicht nutzbar.",
            "Viele Arbeitgeber bieten ein vergünstigtes Jobticket als Deutschlandticket an.",
            "Der Preis des Deutschlandtickets stieg 2025 auf 58 Euro im Monat.",
            "Fahrräder dürfen je nach Verkehrsverbund nur mit extra Fahrradkarte mitgenommen werden.",
        ],
    ),
    dict(
        id="q21",
        lang="de",
        domain="cooking",
        nb=["q22"],
        emoji=[],
        query="schwäbischer Kartoffelsalat Rezept",
        R=[
            "Für schwäbischen Kartoffelsalat kocht man festkochende Kartoffeln, pellt sie warm und schneidet sie in dünne Scheiben.",
            "Das Dressing für schwäbischen Kartoffelsalat besteht aus heißer Brühe, Essig, Senf, Zwiebeln und Öl, aber ohne Mayonnaise.",
            "Gießen Sie die warme Brühe über die Kartoffeln und lassen Sie den Salat mindestens eine Stunde ziehen, bis er schlotzig ist.",
            "Ein echter schwäbischer Kartoffelsalat wird lauwarm serviert, gern zu Maultaschen oder Schnitzel.",
            "Für vier Personen nimmt man etwa ein Kilo Kartoffeln, 250 ml Brühe und drei Esslöffel Weißweinessig.",
            "Wer mag, gibt zum Schluss Schnittlauch und ein paar Gurkenscheiben in den Kartoffelsalat.",
        ],
        P=[
            "Norddeutscher Kartoffelsalat wird meist mit Mayonnaise, Ei und Gewürzgurken zubereitet.",
            "Maultaschen sind mit Brät, Spinat und Brot gefüllte Teigtaschen aus Schwaben.",
            "Mehligkochende Kartoffeln eignen sich besser für Püree und Klöße.",
            "Spätzle werden aus Mehl, Eiern und Wasser hergestellt und direkt ins kochende Wasser geschabt.",
            "Kartoffeln sollten kühl, dunkel und trocken gelagert werden.",
        ],
    ),
    dict(
        id="q22",
        lang="de",
        domain="health",
        nb=["q21"],
        emoji=[],
        query="Hausmittel gegen Halsschmerzen bei Erkältung",
        R=[
            "Bewährte Hausmittel gegen Halsschmerzen sind Gurgeln mit Salzwasser und warmer Salbeitee mit Honig.",
            "Bei einer Erkältung mit Halsschmerzen helfen Halswickel und viel warme Flüssigkeit, die Schleimhäute feucht zu halten.",
            "Lutschpastillen mit Isländisch Moos oder Salbei regen den Speichelfluss an und lindern Halsschmerzen.",
            "Honig beruhigt den gereizten Hals, sollte aber nicht an Kinder unter einem Jahr gegeben werden.",
            "Wenn die Halsschmerzen länger als eine Woche dauern oder hohes Fieber dazukommt, sollten Sie zum Arzt gehen.",
            "Inhalieren mit Kamillendampf kann bei einer Erkältung die gereizten Atemwege beruhigen.",
        ],
        P=[
            "Eine Erkältung wird meist von Viren verursacht, daher helfen Antibiotika nicht.",
            "Regelmäßiges Händewaschen senkt das Risiko, sich mit Erkältungsviren anzustecken.",
            "Fieber über 39 Grad sollte ärztlich abgeklärt werden.",
            "Ausreichend Schlaf stärkt das Immunsystem in der Erkältungszeit.",
            "Nasenspray mit Meerwasser befeuchtet die Nasenschleimhaut bei Schnupfen.",
        ],
    ),
    dict(
        id="q23",
        lang="de",
        domain="product support",
        nb=["q19", "q20"],
        xnb=["q01"],
        emoji=[],
        query="Windows 11 Drucker wird nicht erkannt",
        R=[
            "Wenn Windows 11 den Drucker nicht erkennt, prüfen Sie zuerst Kabel, WLAN-Verbindung und ob der Drucker eingeschaltet ist.",
            "Öffnen Sie unter Windows 11 Einstellungen > Bluetooth und Geräte > Drucker und Scanner und klicken Sie auf Gerät hinzufügen.",
            "Die Problembehandlung für Drucker in Windows 11 findet viele Ursachen, warum ein Drucker nicht erkannt wird, automatisch.",
            "Installieren Sie den aktuellen Treiber von der Website des Herstellers, wenn Windows 11 den Drucker trotzdem nicht erkennt.",
            "Ein Neustart des Dienstes Druckwarteschlange behebt oft Probleme, bei denen der Drucker nicht erkannt wird.",
            "Netzwerkdrucker werden nicht erkannt, wenn PC und Drucker in unterschiedlichen WLAN-Netzen oder im Gastnetz hängen.",
        ],
        P=[
            "Windows 11 installiert Updates automatisch, kann sie aber bis zu fünf Wochen pausieren.",
            "Leere oder eingetrocknete Patronen führen zu Streifen im Ausdruck.",
            "Mit der Tastenkombination Windows + Umschalt + S erstellen Sie einen Screenshot.",
            "Die Bluetooth-Kopplung von Kopfhörern erfolgt ebenfalls unter Bluetooth und Geräte.",
            "Für Windows 11 benötigt der PC ein TPM-2.0-Modul und einen unterstützten Prozessor.",
        ],
    ),
    # ----------------------------------------------------------------- French
    dict(
        id="q24",
        lang="fr",
        domain="cooking",
        nb=["q27"],
        emoji=["🥞"],
        query="recette pâte à crêpes sans repos",
        R=[
            "Pour une pâte à crêpes sans repos, mélangez 250 g de farine, 4 œufs et 50 cl de lait en ajoutant le lait petit à petit.",
            "Le repos de la pâte à crêpes n'est pas obligatoire si vous utilisez un fouet ou un mixeur pour éviter les grumeaux.",
            "Ajoutez 50 g de beurre fondu à la pâte : les crêpes seront souples et n'attacheront pas, même sans repos.",
            "Avec un peu de lait tiède, la pâte à crêpes devient lisse tout de suite et peut être utilisée sans repos.",
            "Cette recette de crêpes rapide se prépare en cinq minutes et donne une quinzaine de crêpes fines.",
            "Une pincée de sel et un sachet de sucre vanillé suffisent à parfumer la pâte à crêpes.",
        ],
        P=[
            "La pâte à galettes bretonnes se prépare avec de la farine de sarrasin, de l'eau et du sel.",
            "Pour la Chandeleur, on fait traditionnellement sauter les crêpes en tenant une pièce dans la main.",
            "Les crêpes Suzette sont flambées au Grand Marnier avec un beurre à l'orange.",
            "Une poêle antiadhésive bien chaude est indispensable pour réussir les crêpes.",
            "La pâte à pancakes contient de la levure et donne des galettes plus épaisses.",
        ],
    ),
    dict(
        id="q25",
        lang="fr",
        domain="tax",
        nb=["q26"],
        emoji=[],
        query="date limite déclaration de revenus en ligne",
        R=[
            "La date limite de la déclaration de revenus en ligne dépend de votre département et s'échelonne entre fin mai et début juin.",
            "Pour les départements 01 à 19, la date limite de déclaration en ligne tombe généralement fin mai.",
            "La déclaration de revenus en ligne se fait sur impots.gouv.fr, dans votre espace particulier.",
            "En cas de retard après la date limite, une majoration de 10 % peut s'appliquer sur l'impôt dû.",
            "Si vous déclarez vos revenus en ligne, vous bénéficiez d'un délai supplémentaire par rapport à la déclaration papier.",
            "Vous pouvez corriger votre déclaration de revenus en ligne après la date limite grâce au service de correction ouvert en été.",
        ],
        P=[
            "Le prélèvement à la source ajuste le taux d'imposition chaque année après la déclaration.",
            "Les frais réels peuvent remplacer l'abattement forfaitaire de 10 % sur les salaires.",
            "L'avis d'impôt est disponible dans l'espace particulier à partir de fin juillet.",
            "Les dons aux associations ouvrent droit à une réduction d'impôt de 66 %.",
            "La taxe foncière est due par les propriétaires au 1er janvier.",
        ],
    ),
    dict(
        id="q26",
        lang="fr",
        domain="travel",
        nb=["q25"],
        emoji=[],
        query="que visiter à Lisbonne en 3 jours",
        R=[
            "En 3 jours à Lisbonne, visitez le quartier de l'Alfama, le château Saint-Georges et le belvédère de Graça le premier jour.",
            "Le deuxième jour à Lisbonne, prenez le tram 15 jusqu'à Belém pour visiter le monastère des Hiéronymites et la tour de Belém.",
            "Gardez une journée pour Sintra, à 40 minutes de Lisbonne en train, avec le palais de Pena et la Quinta da Regaleira.",
            "Le tram 28 traverse les quartiers historiques de Lisbonne, mais il est souvent bondé : montez tôt le matin.",
            "Goûtez les pastéis de Belém encore tièdes, la pâtisserie la plus célèbre de Lisbonne.",
            "Le soir, allez écouter du fado dans une petite maison de l'Alfama ou du Bairro Alto.",
        ],
        P=[
            "Porto, au nord du Portugal, est célèbre pour ses caves à vin et le pont Dom-Luís.",
            "L'Algarve offre des plages et des falaises spectaculaires sur la côte sud.",
            "La carte Lisboa Card donne accès aux transports et à de nombreux musées.",
            "Au printemps, les températures à Lisbonne dépassent souvent 20 degrés.",
            "Le vol entre Paris et Lisbonne dure environ deux heures et demie.",
        ],
    ),
    dict(
        id="q27",
        lang="fr",
        domain="health",
        nb=["q24"],
        xnb=["q05"],
        emoji=[],
        query="symptômes carence en fer femme",
        R=[
            "Les symptômes d'une carence en fer chez la femme sont la fatigue, la pâleur, l'essoufflement et la chute de cheveux.",
            "Les femmes qui ont des règles abondantes ont un risque plus élevé de carence en fer.",
            "Une carence en fer se diagnostique par une prise de sang qui mesure la ferritine.",
            "Des ongles cassants, des maux de tête et des jambes sans repos peuvent aussi être des symptômes d'un manque de fer.",
            "Pendant la grossesse, les besoins en fer augmentent et une carence est fréquente chez la femme enceinte.",
            "Une anémie ferriprive non traitée provoque une fatigue importante et des palpitations.",
        ],
        P=[
            "Le fer est présent dans la viande rouge, les lentilles et les épinards.",
            "La vitamine C améliore l'absorption du fer d'origine végétale.",
            "Le thé et le café pris pendant le repas réduisent l'absorption du fer.",
            "La carence en vitamine D est fréquente en hiver, faute d'exposition au soleil.",
            "Un excès de fer peut être toxique pour le foie.",
        ],
    ),
    # ---------------------------------------------------------------- Spanish
    dict(
        id="q28",
        lang="es",
        domain="cooking",
        nb=["q29", "q30"],
        emoji=[],
        query="receta paella valenciana auténtica",
        R=[
            "La paella valenciana auténtica lleva pollo, conejo, judía verde plana, garrofón, tomate, aceite de oliva, azafrán y arroz.",
            "Para una paella valenciana se usa arroz redondo tipo bomba o senia, que absorbe bien el caldo sin pasarse.",
            "En la receta tradicional de paella valenciana no se añade marisco ni chorizo.",
            "Se sofríe la carne en la paella hasta dorarla, luego las verduras y el tomate rallado antes de añadir el agua.",
            "El socarrat es la capa de arroz ligeramente tostada en el fondo de la paella, muy apreciada en Valencia.",
            "La paella valenciana se cocina tradicionalmente con leña de naranjo y se deja reposar cinco minutos antes de servir.",
        ],
        P=[
            "La paella de marisco lleva gambas, mejillones y calamares y se cocina con caldo de pescado.",
            "El arroz negro se tiñe con tinta de calamar y se sirve con alioli.",
            "La fideuá es parecida a la paella, pero se hace con fideos en lugar de arroz.",
            "El azafrán es una de las especias más caras del mundo.",
            "La horchata de chufa es una bebida típica de Valencia.",
        ],
    ),
    dict(
        id="q29",
        lang="es",
        domain="law",
        nb=["q30"],
        emoji=[],
        query="requisitos para cobrar el paro en España",
        R=[
            "Para cobrar el paro en España hay que haber cotizado al menos 360 días en los últimos seis años.",
            "Otro requisito para cobrar el paro es estar en situación legal de desempleo, por ejemplo tras un despido o el fin de un contrato.",
            "Si te das de baja voluntaria en la empresa, en general no tienes derecho a cobrar el paro.",
            "La solicitud del paro se presenta ante el SEPE en los 15 días hábiles siguientes a quedarse sin trabajo.",
            "Para cobrar la prestación también hay que inscribirse como demandante de empleo y firmar el compromiso de actividad.",
            "La duración del paro depende de los días cotizados y va de cuatro meses a dos años.",
        ],
        P=[
            "El subsidio por desempleo es una ayuda para quienes han agotado la prestación contributiva.",
            "La vida laboral se puede descargar en la sede electrónica de la Seguridad Social.",
            "El finiquito incluye las vacaciones no disfrutadas y las pagas extra pendientes.",
            "La indemnización por despido improcedente es de 33 días por año trabajado.",
            "El Ingreso Mínimo Vital es una prestación para hogares con bajos ingresos.",
        ],
    ),
    dict(
        id="q30",
        lang="es",
        domain="finance",
        nb=["q29"],
        xnb=["q08"],
        emoji=[],
        query="qué es una hipoteca a tipo fijo",
        R=[
            "Una hipoteca a tipo fijo mantiene el mismo tipo de interés durante toda la vida del préstamo, así que la cuota no cambia.",
            "La principal ventaja de una hipoteca a tipo fijo es la seguridad: no te afectan las subidas del euríbor.",
            "Las hipotecas a tipo fijo suelen tener un interés inicial más alto que las hipotecas variables.",
            "En una hipoteca a tipo fijo la comisión por amortización anticipada puede ser mayor que en una variable.",
            "Si esperas que los tipos suban, una hipoteca a tipo fijo te protege durante 20 o 30 años.",
            "La hipoteca mixta combina unos años a tipo fijo con un periodo posterior a tipo variable.",
        ],
        P=[
            "El euríbor es el índice de referencia más usado en las hipotecas variables en España.",
            "Los bancos suelen financiar como máximo el 80 % del valor de tasación de la vivienda.",
            "Al comprar una vivienda hay que pagar impuestos, notaría y registro, alrededor del 10 % del precio.",
            "La TAE incluye el tipo de interés y los gastos y comisiones del préstamo.",
            "Un préstamo personal tiene plazos más cortos y tipos más altos que una hipoteca.",
        ],
    ),
    # ---------------------------------------------------------------- Chinese
    dict(
        id="q31",
        lang="zh",
        domain="household",
        nb=["q32", "q33"],
        emoji=["☕"],
        query="如何去除衣服上的咖啡渍",
        R=[
            "衣服上刚沾到咖啡渍时，先用冷水从背面冲洗，不要用热水，以免污渍固定。",
            "去除咖啡渍可以在污渍处涂少量洗洁精，轻轻揉搓后静置十分钟再清洗。",
            "白色衣服上的旧咖啡渍可以用含氧漂白剂浸泡半小时，再正常机洗。",
            "用白醋和水按一比二混合，用干净的布蘸取后按压咖啡渍，能有效去除污渍。",
            "如果咖啡里加了牛奶，去渍前最好先用含酶洗衣液处理其中的蛋白质。",
            "丝绸和羊毛衣服上的咖啡渍不要用力搓洗，建议送到干洗店处理。",
        ],
        P=[
            "衣服上的油渍可以先撒上爽身粉吸油，再用洗洁精清洗。",
            "红酒渍可以先撒盐吸收，再用冷水冲洗。",
            "洗衣服前应先查看衣服上的洗涤标签。",
            "深色衣服最好翻面后用冷水洗，以防褪色。",
            "咖啡杯上的茶垢和咖啡垢可以用小苏打擦洗干净。",
        ],
    ),
    dict(
        id="q32",
        lang="zh",
        domain="programming",
        nb=["q31", "q33"],
        xnb=["q04"],
        emoji=[],
        query="Python 读取 CSV 文件 中文乱码",
        R=[
            "Python 读取 CSV 文件出现中文乱码，通常是因为文件编码是 GBK，而程序默认按 UTF-8 解码。",
            "使用 pandas.read_csv 时加上参数 encoding='gbk' 或 encoding='utf-8-sig'，大多数中文乱码问题都能解决。",
            "用 Excel 保存的 CSV 文件常带有 BOM 头，Python 读取时应使用 utf-8-sig 编码。",
            "如果不确定 CSV 文件的编码，可以先用 chardet 库检测编码再读取。",
            "用内置 open 函数读取 CSV 文件时，同样需要指定 encoding 参数，例如 encoding='gb18030'。",
            "写出 CSV 文件时使用 utf-8-sig 编码，可以避免用 Excel 打开时中文显示乱码。",
        ],
        P=[
            "pandas 的 DataFrame 可以用 to_excel 方法直接导出为 Excel 文件。",
            "Python 的 json 模块在输出中文时需要设置 ensure_ascii=False。",
            "读取大型 CSV 文件时可以使用 chunksize 参数分块处理，减少内存占用。",
            "在 Windows 命令行中打印中文，可能需要修改控制台的代码页。",
            "CSV 文件中的日期列可以通过 parse_dates 参数自动转换为日期类型。",
        ],
    ),
    dict(
        id="q33",
        lang="zh",
        domain="travel",
        nb=["q31", "q32"],
        emoji=["🚄"],
        query="高铁儿童票怎么买",
        R=[
            "根据铁路新规，6周岁至14周岁的儿童乘坐高铁需要购买儿童票，票价为成人票的一半。",
            "在12306上购买高铁儿童票时，可以使用儿童本人的身份证或户口簿信息购票。",
            "未满6周岁的儿童如果不单独占用座位可以免票，但每名成人只能免费携带一名儿童。",
            "年满14周岁的儿童乘坐高铁须购买全价票，不能再买儿童票。",
            "儿童没有身份证时，可以由成人在车站售票窗口凭户口簿购买儿童票。",
            "购买高铁儿童票需要与同行成人一起购票，系统会自动计算儿童优惠票价。",
        ],
        P=[
            "学生票每学年可以优惠购买四次，需要先在12306完成学生资质核验。",
            "高铁一等座的票价一般比二等座高出百分之六十左右。",
            "乘坐高铁时可以刷身份证直接进站，无需取纸质车票。",
            "改签高铁票需在开车前办理，开车前四十八小时以上改签免费。",
            "高铁上禁止吸烟，违者可能被限制乘坐火车。",
        ],
    ),
    # --------------------------------------------------------------- Japanese
    dict(
        id="q34",
        lang="ja",
        domain="tax",
        nb=["q35", "q36"],
        emoji=[],
        query="確定申告 医療費控除 やり方",
        R=[
            "医療費控除は、1年間に支払った医療費が10万円を超えた場合に確定申告で受けられる控除です。",
            "医療費控除のやり方は、医療費控除の明細書を作成し、確定申告書と一緒に税務署へ提出するだけです。",
            "e-Taxを使えば、マイナポータル連携で医療費通知のデータを取り込み、確定申告をスマホで完結できます。",
            "家族の医療費も合算できるため、所得の高い人がまとめて医療費控除を申告すると節税効果が大きくなります。",
            "保険金で補填された金額は、医療費控除の計算で支払った医療費から差し引く必要があります。",
            "領収書は提出不要ですが、確定申告の期限から5年間は自宅で保管しておきましょう。",
        ],
        P=[
            "セルフメディケーション税制は、対象の市販薬の購入額が1万2千円を超えると利用できます。",
            "ふるさと納税をした会社員は、ワンストップ特例を使えば確定申告が不要です。",
            "確定申告の期間は、原則として毎年2月16日から3月15日までです。",
            "住宅ローン控除は、初年度のみ確定申告が必要で、2年目以降は年末調整で受けられます。",
            "副業の所得が年間20万円を超える場合は確定申告が必要です。",
        ],
    ),
    dict(
        id="q35",
        lang="ja",
        domain="product support",
        nb=["q34", "q36"],
        xnb=["q10"],
        emoji=["📱", "🔌"],
        query="iPhone 充電できない 対処法",
        R=[
            "iPhoneが充電できないときは、まずLightningまたはUSB-Cケーブルと電源アダプタを別のものに替えて試しましょう。",
            "充電ポートにホコリが詰まっているとiPhoneが充電できないことがあるので、つまようじなどでやさしく掃除します。",
            "iPhoneを強制再起動すると、ソフトウェアの不具合で充電できない症状が直ることがあります。",
            "「最適化されたバッテリー充電」がオンだと80%で充電が止まることがありますが、故障ではありません。",
            "本体が熱くなりすぎると安全のため充電が一時停止するので、涼しい場所で冷ましてから充電してください。",
            "それでも充電できない場合は、Appleサポートに連絡してバッテリーや充電ポートの点検を依頼しましょう。",
        ],
        P=[
            "iPhoneのバッテリーの状態は、設定の「バッテリー」から確認できます。",
            "iOSのアップデート後は、しばらくバッテリーの減りが早くなることがあります。",
            "画面が割れたiPhoneは、正規サービスプロバイダで修理を受けられます。",
            "低電力モードをオンにすると、バックグラウンドの動作が減ってバッテリーが長持ちします。",
            "ワイヤレス充電にはQi規格に対応した充電器が必要です。",
        ],
    ),
    dict(
        id="q36",
        lang="ja",
        domain="travel",
        nb=["q34", "q35"],
        xnb=["q02"],
        emoji=["🍁"],
        query="京都 紅葉 見頃",
        R=[
            "京都の紅葉の見頃は、例年11月中旬から12月上旬です。",
            "東福寺や永観堂は京都を代表する紅葉の名所で、見頃の週末は大変混雑します。",
            "標高の高い高雄や貴船は市内より早く、11月上旬に紅葉の見頃を迎えます。",
            "嵐山の紅葉は11月下旬が見頃で、渡月橋から眺める山の景色が人気です。",
            "紅葉シーズンの京都では、清水寺などでライトアップが行われ、夜の紅葉も楽しめます。",
            "その年の気温によって紅葉の見頃は前後するので、出発前に最新の紅葉情報を確認しましょう。",
        ],
        P=[
            "京都の桜の見頃は、例年3月下旬から4月上旬です。",
            "京都駅から嵐山へはJR嵯峨野線で約15分です。",
            "祇園祭は毎年7月に行われる京都三大祭りの一つです。",
            "京都市内の移動には、地下鉄とバスの一日乗車券が便利です。",
            "奈良公園の紅葉も11月中旬から下旬にかけて美しくなります。",
        ],
    ),
]

# Boilerplate sentences that real pages carry (added to a few documents).
GENERIC = {
    "en": [
        "Last updated in March 2024.",
        "This article is for general information only.",
        "Readers also asked about related topics in our community forum.",
        "Share your experience in the comments below.",
    ],
    "de": [
        "Zuletzt aktualisiert im März 2024.",
        "Alle Angaben ohne Gewähr.",
        "Weitere Fragen beantwortet gern unser Kundenservice.",
        "Teilen Sie Ihre Erfahrungen in den Kommentaren.",
    ],
    "fr": [
        "Mis à jour en mars 2024.",
        "Cet article est fourni à titre informatif.",
        "D'autres lecteurs ont posé des questions similaires sur notre forum.",
        "Partagez votre avis dans les commentaires.",
    ],
    "es": [
        "Actualizado en marzo de 2024.",
        "Este artículo tiene carácter meramente informativo.",
        "Otros lectores han preguntado sobre temas parecidos en nuestro foro.",
        "Deja tu opinión en los comentarios.",
    ],
    "zh": ["本文最后更新于2024年3月。", "以上内容仅供参考。", "欢迎在评论区分享你的经验。"],
    "ja": [
        "この記事は2024年3月に更新されました。",
        "情報は掲載時点のものです。",
        "ご意見はコメント欄にお寄せください。",
    ],
}

# Lexical traps: pages that repeat the query's words without answering it
# (unanswered forum posts, tag pages, shop pages, closed threads, video stubs).
# {q} = the query, {o1}/{o2} = other queries in the same language.
TRAPS = {
    "en": [
        "Question: {q}? I have tried everything I could find and nothing works, any ideas? Thanks in advance.",
        "Related searches: {q}, {o1}, {o2}.",
        "Looking for {q}? Compare offers, read reviews and get free shipping on orders over 50 dollars.",
        "{q} - this thread has been locked by a moderator because it is a duplicate. Please use the search function before posting.",
        "Video: {q} (12:48). Subscribe to our channel for more tips and tricks.",
    ],
    "de": [
        "Frage: {q}? Ich habe schon alles versucht, was ich finden konnte, aber nichts hilft. Hat jemand eine Idee?",
        "Ähnliche Suchanfragen: {q}, {o1}, {o2}.",
        "Sie suchen {q}? Jetzt Angebote vergleichen, Bewertungen lesen und versandkostenfrei bestellen.",
        "{q} – dieses Thema wurde von einem Moderator geschlossen, da es bereits existiert. Bitte nutzen Sie die Suchfunktion.",
        "Video: {q} (12:48). Abonnieren Sie unseren Kanal für weitere Tipps.",
    ],
    "fr": [
        "Question : {q} ? J'ai essayé tout ce que j'ai trouvé, mais rien ne marche. Quelqu'un a une idée ?",
        "Recherches associées : {q}, {o1}, {o2}.",
        "Vous cherchez {q} ? Comparez les offres, lisez les avis et profitez de la livraison gratuite.",
        "{q} – ce sujet a été fermé par un modérateur car il existe déjà. Merci d'utiliser la fonction de recherche.",
        "Vidéo : {q} (12:48). Abonnez-vous à notre chaîne pour plus d'astuces.",
    ],
    "es": [
        "Pregunta: ¿{q}? He probado todo lo que he encontrado y nada funciona. ¿Alguna idea?",
        "Búsquedas relacionadas: {q}, {o1}, {o2}.",
        "¿Buscas {q}? Compara ofertas, lee opiniones y disfruta del envío gratis.",
        "{q}: este tema ha sido cerrado por un moderador porque ya existe. Usa el buscador antes de publicar.",
        "Vídeo: {q} (12:48). Suscríbete a nuestro canal para más trucos.",
    ],
    "zh": [
        "求助：{q}？网上的方法都试过了还是不行，有没有大神知道怎么办？",
        "相关搜索：{q}、{o1}、{o2}。",
        "正在找{q}？点击查看更多优惠商品，满99元包邮。",
        "{q}——该帖子因重复已被版主关闭，发帖前请先使用搜索功能。",
        "视频：{q}（12:48）。关注我们的频道，获取更多小技巧。",
    ],
    "ja": [
        "質問です。{q}について調べても解決しません。同じ症状の方いますか？",
        "関連する検索：{q}、{o1}、{o2}",
        "{q}をお探しですか？人気商品をランキングで比較、送料無料の商品も多数。",
        "{q}――このスレッドは重複のためモデレーターによりクローズされました。投稿前に検索をご利用ください。",
        "動画：{q}（12:48）。チャンネル登録で最新のコツをお届けします。",
    ],
}

# Candidate list sizes (first-stage depth differs per query, as in real logs).
SIZES = {
    "q01": 150,
    "q02": 64,
    "q03": 38,
    "q04": 300,
    "q05": 123,
    "q06": 88,
    "q07": 47,
    "q08": 228,
    "q09": 177,
    "q10": 65,
    "q11": 31,
    "q12": 42,
    "q13": 251,
    "q14": 58,
    "q15": 95,
    "q16": 116,
    "q17": 204,
    "q18": 70,
    "q19": 54,
    "q20": 27,
    "q21": 35,
    "q22": 61,
    "q23": 131,
    "q24": 40,
    "q25": 83,
    "q26": 23,
    "q27": 108,
    "q28": 45,
    "q29": 72,
    "q30": 20,
    "q31": 52,
    "q32": 101,
    "q33": 24,
    "q34": 66,
    "q35": 76,
    "q36": 29,
}
# Queries that get one exact-duplicate text under a second doc id.
DUPLICATE_QUERIES = ["q01", "q04", "q09", "q13", "q23", "q32", "q35"]
# The very long (~2,000 words) document lives here.
LONG_DOC_QUERY = "q16"
# Judged doc ids that no candidate list contains (pool mismatch).
POOL_MISMATCH = [("q08", 2), ("q27", 1)]

# Mean first-stage score by document class; the noise makes the order imperfect.
CLASS_MEAN = {
    "rel3": 1.3,
    "rel2": 1.1,
    "rel1": 0.8,
    "trap": 0.9,
    "hard": 0.6,
    "xlang": 0.4,
    "rand": 0.0,
}
NOISE_SD = 0.65
JUDGE_P = {"trap": 0.9, "hard": 0.7, "xlang": 0.5, "rand": 0.25}

CJK = {"zh", "ja"}
BY_ID = {t["id"]: t for t in TOPICS}


def n_words(text: str, lang: str) -> int:
    return len(text) if lang in CJK else len(text.split())


def min_len(lang: str) -> int:
    return 40 if lang in CJK else 20


def join(sents, lang):
    return ("" if lang in CJK else " ").join(sents)


def compose(rng, lang, primary, k_primary, extra=(), k_extra=0, pad=None, generic_p=0.12):
    """Pick sentences (kept in pool order for readability) and pad to min length."""
    idx = sorted(rng.sample(range(len(primary)), k_primary))
    sents = [primary[i] for i in idx]
    if k_extra:
        sents += [extra[i] for i in sorted(rng.sample(range(len(extra)), k_extra))]
    pool = [s for s in (primary if pad is None else pad) if s not in sents]
    while n_words(join(sents, lang), lang) < min_len(lang) and pool and len(sents) < 4:
        sents.append(pool.pop(rng.randrange(len(pool))))
    if rng.random() < generic_p:
        g = GENERIC[lang]
        sents.append(g[rng.randrange(len(g))])
    return join(sents, lang)


def other_topic_doc(rng, topic):
    """A passage drawn from another topic (used as a negative)."""
    pool = topic["R"] + topic["P"]
    return compose(rng, topic["lang"], pool, rng.choice([2, 2, 3]))


def trap_doc(rng, topic, same_lang):
    lang = topic["lang"]
    others = [t["query"] for t in same_lang]
    o1, o2 = rng.sample(others, 2) if len(others) >= 2 else (others * 2)[:2]
    tmpl = TRAPS[lang][rng.randrange(len(TRAPS[lang]))]
    sents = [tmpl.format(q=topic["query"], o1=o1, o2=o2)]
    pad = GENERIC[lang][:]
    rng.shuffle(pad)
    while n_words(join(sents, lang), lang) < min_len(lang) and pad:
        sents.append(pad.pop())
    return join(sents, lang)


def long_document(rng, topic):
    lang = topic["lang"]
    pool = topic["R"] + topic["P"] + GENERIC[lang][:2]
    parts, words = [], 0
    while words < 2000:
        order = pool[:]
        rng.shuffle(order)
        for s in order:
            parts.append(s)
            words += n_words(s, lang)
            if words >= 2000:
                break
    intro = "Frequently asked questions about interest, savings and loans, collected from our readers over several years."
    return intro + " " + " ".join(parts)


def class_counts(rng, n):
    nrel = max(6, min(24, round(n * 0.11)))
    n3 = max(1, round(nrel * rng.uniform(0.2, 0.35)))
    n2 = max(1, round(nrel * rng.uniform(0.25, 0.4)))
    n1 = max(1, nrel - n3 - n2)
    neg = n - n3 - n2 - n1
    trap = rng.choice([0, 1, 1, 2]) + (n >= 150)
    hard = round((neg - trap) * rng.uniform(0.25, 0.4))
    return n3, n2, n1, trap, hard, neg - trap - hard


def build_query(rng, topic):
    qid, lang = topic["id"], topic["lang"]
    n = SIZES[qid]
    dup = qid in DUPLICATE_QUERIES
    n_gen = n - 1 if dup else n
    n3, n2, n1, trap, hard, rand = class_counts(rng, n_gen)
    R, P = topic["R"], topic["P"]
    same_lang = [t for t in TOPICS if t["lang"] == lang and t["id"] != qid]
    others = [t for t in TOPICS if t["lang"] != lang]
    nb = [BY_ID[x] for x in topic["nb"]]

    docs = []  # (text, cls, rel)
    seen = {}

    def add(text, cls, rel):
        if text in seen:
            return False
        seen[text] = True
        docs.append([text, cls, rel])
        return True

    if qid == LONG_DOC_QUERY:
        add(long_document(rng, topic), "rel2", 2)
        n2 -= 1
    plan = [
        ("rel3", 3, n3),
        ("rel2", 2, n2),
        ("rel1", 1, n1),
        ("trap", 0, trap),
        ("hard", 0, hard),
        ("rand", 0, rand),
    ]
    for cls, rel, count in plan:
        made = 0
        while made < count:
            c = cls
            if cls == "rel3":
                text = compose(rng, lang, R, rng.choice([2, 2, 3]), P, rng.choice([0, 0, 1]))
            elif cls == "rel2":
                text = compose(rng, lang, R, 1, P, rng.choice([1, 2]), pad=P)
            elif cls == "rel1":
                text = compose(rng, lang, P, rng.choice([2, 2, 3]))
            elif cls == "trap":
                text = trap_doc(rng, topic, same_lang)
            elif cls == "hard":
                text = other_topic_doc(rng, rng.choice(nb))
            else:
                r = rng.random()
                if topic.get("xnb") and r < 0.06:
                    text, c = other_topic_doc(rng, BY_ID[rng.choice(topic["xnb"])]), "xlang"
                elif r < 0.1:
                    text, c = other_topic_doc(rng, rng.choice(others)), "xlang"
                else:
                    text = other_topic_doc(rng, rng.choice(same_lang))
            if topic["emoji"] and rng.random() < 0.15:
                e = rng.choice(topic["emoji"])
                text = e + " " + text if rng.random() < 0.5 else text + " " + e
            if add(text, c, rel):
                made += 1

    # First-stage scores: noisy function of the class -> imperfect order.
    for d in docs:
        d.append(CLASS_MEAN[d[1]] + rng.gauss(0.0, NOISE_SD))
    docs.sort(key=lambda d: -d[3])
    if dup:
        # An exact duplicate (e.g. the same page under two URLs) gets the same score.
        j = rng.randrange(len(docs))
        docs.insert(j + 1, list(docs[j]))

    nums = rng.sample(range(1, 10000), len(docs) + len(POOL_MISMATCH))
    out = []
    for rank, (d, num) in enumerate(zip(docs, nums, strict=False), start=1):
        text, cls, rel, latent = d
        score = round(12.0 + 3.0 * latent, 4)
        out.append(
            dict(doc_id=f"d-{qid}-{num:04d}", text=text, cls=cls, rel=rel, rank=rank, score=score)
        )
    # Keep scores non-increasing after rounding.
    for i in range(1, len(out)):
        out[i]["score"] = min(out[i]["score"], out[i - 1]["score"])
    spare = [f"d-{qid}-{num:04d}" for num in nums[len(docs) :]]
    return out, spare


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    rng = random.Random(SEED)
    per_query = []
    qrels = []
    mismatch = dict(POOL_MISMATCH)
    for topic in TOPICS:
        docs, spare = build_query(rng, topic)
        per_query.append((topic, docs))
        for d in docs:
            judged = d["rel"] > 0 or rng.random() < JUDGE_P[d["cls"]]
            if judged:
                qrels.append((topic["id"], d["doc_id"], d["rel"]))
        if topic["id"] in mismatch:
            qrels.append((topic["id"], spare[0], mismatch[topic["id"]]))
    # Duplicates: judge both copies the same way.
    judged_ids = {(q, d): r for q, d, r in qrels}
    for topic, docs in per_query:
        for a, b in zip(docs, docs[1:], strict=False):
            if a["text"] == b["text"]:
                ka, kb = (topic["id"], a["doc_id"]), (topic["id"], b["doc_id"])
                if ka in judged_ids and kb not in judged_ids:
                    qrels.append((topic["id"], b["doc_id"], a["rel"]))
                elif kb in judged_ids and ka not in judged_ids:
                    qrels.append((topic["id"], a["doc_id"], b["rel"]))
    qrels.sort()

    # ---- grouped parquet
    doc_type = pa.struct([("id", pa.string()), ("text", pa.string())])
    grouped_schema = pa.schema(
        [("query_id", pa.string()), ("query", pa.string()), ("documents", pa.list_(doc_type))]
    )
    grouped = pa.table(
        {
            "query_id": [t["id"] for t, _ in per_query],
            "query": [t["query"] for t, _ in per_query],
            "documents": [
                [{"id": d["doc_id"], "text": d["text"]} for d in docs] for _, docs in per_query
            ],
        },
        schema=grouped_schema,
    )
    pq.write_table(grouped, os.path.join(args.out, "candidates.parquet"), row_group_size=8)

    # ---- grouped jsonl (parallel lists of strings)
    with open(os.path.join(args.out, "candidates.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for t, docs in per_query:
            f.write(
                json.dumps(
                    {
                        "query_id": t["id"],
                        "query": t["query"],
                        "documents": [d["text"] for d in docs],
                        "doc_ids": [d["doc_id"] for d in docs],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )

    # ---- pairs parquet + gzip jsonl
    rows = [
        dict(
            query_id=t["id"],
            query=t["query"],
            doc_id=d["doc_id"],
            text=d["text"],
            first_stage_rank=d["rank"],
            first_stage_score=d["score"],
        )
        for t, docs in per_query
        for d in docs
    ]
    pairs_schema = pa.schema(
        [
            ("query_id", pa.string()),
            ("query", pa.string()),
            ("doc_id", pa.string()),
            ("text", pa.string()),
            ("first_stage_rank", pa.int32()),
            ("first_stage_score", pa.float64()),
        ]
    )
    pairs = pa.Table.from_pylist(rows, schema=pairs_schema)
    pq.write_table(pairs, os.path.join(args.out, "pairs.parquet"), row_group_size=1024)
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    with open(os.path.join(args.out, "pairs.jsonl.gz"), "wb") as f:
        f.write(gzip.compress(payload, compresslevel=9, mtime=0))

    # ---- qrels
    with open(os.path.join(args.out, "qrels.txt"), "w", encoding="utf-8", newline="\n") as f:
        for q, d, r in qrels:
            f.write(f"{q} 0 {d} {r}\n")

    total = sum(len(docs) for _, docs in per_query)
    print(f"queries={len(per_query)} candidates={total} qrels={len(qrels)} -> {args.out}")


if __name__ == "__main__":
    main()
