"""The words and patterns geo.geoparse reads a post with: cue words, everyday words that are also place
names, sports and station words, ZIP code and state patterns, transit lines. Pure tables, no scoring.
"""

from __future__ import annotations

import re

CUES = frozenset({"in", "at", "near", "on", "from", "around", "outside", "inside", "across", "off", "along", "by",
                  "behind", "corner", "over", "through", "throughout",
                  # an outage word right before the name: "power out Ridgewood", "blackout Astoria"
                  "out", "down", "outage", "outages", "blackout", "dark"})
SKIPPABLE = frozenset({"the", "of"})
SPORTS = frozenset({"fc", "afc", "vs", "v", "match", "league", "premier", "epl", "striker", "midfielder",
                    "transfer", "kickoff", "derby", "goalkeeper", "manager", "squad"})
STATION_WORDS = frozenset({"station", "stop", "subway", "train", "platform", "terminal"})
# Place names that are also everyday words or first names: written in lower case they are probably not places.
COMMON_WORDS = frozenset({
    "orange", "corona", "madison", "union", "melrose", "hillside", "sunnyside", "woodside", "bayside",
    "harrison", "elizabeth", "linden", "garfield", "kensington", "chelsea", "jamaica", "downtown", "midtown",
    "roosevelt", "springfield", "hollis", "lincoln", "flatiron", "wakefield", "oakwood", "belmont", "highbridge",
    "longwood", "norwood", "tremont", "richmond", "clearview", "hillcrest", "woodlawn", "steinway", "bloomfield",
    "rosedale", "glendale", "ridgewood", "bayswater", "flushing", "big apple", "the battery", "soho", "bk",
    "inwood", "fordham", "parkchester", "riverdale", "belle harbor", "seagate", "sea gate", "brighton beach",
    "gravesend", "kingsbridge", "allerton", "arverne", "edgemere", "travis", "stapleton", "annadale", "paterson",
})
ZIP_RE = re.compile(r"(?<![\w$#@/.,:-])(\d{5})(?:-\d{4})?(?![\w$%]|[.,:]\d)")
FIVE_DIGITS = re.compile(r"\d{5}").search
ZIP_WORDS = frozenset({"zip", "zipcode", "postcode", "code"})
NOT_ZIP_AFTER = frozenset({"people", "dollars", "usd", "likes", "views", "followers", "votes", "times", "years",
                           "feet", "ft", "miles", "residents", "customers", "homes", "households", "meters", "calls",
                           "gallons", "acres", "units", "pounds", "lbs", "kg", "tons", "reports"})
STATE_ABBR_RE = re.compile(r"\s*,\s*([A-Z]{2})\b")
US_STATES = frozenset("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
                      "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split())
# Transit lines named in a post: "the A train", "2/3 line", "on the 6 local", "(N/Q/R/W)". Letters count
# in capitals only ("a train" is any train).
LINES_RE = re.compile(r"(?<![\w/])((?:[A-Z]|\d{1,2})(?:\s*/\s*(?:[A-Z]|\d{1,2}))*)\s*(?:trains?|lines?|local|express)\b"
                      r"|\(((?:[A-Z]|\d{1,2})(?:\s*/\s*(?:[A-Z]|\d{1,2}))+)\)")


def lines_named(text: str) -> frozenset[str]:
    """Transit lines a post names ("the A train", "2/3 line", "(N/Q)")."""
    out: set[str] = set()
    for m in LINES_RE.finditer(text):
        out.update(x.strip() for x in (m.group(1) or m.group(2)).split("/"))
    return frozenset(out)
