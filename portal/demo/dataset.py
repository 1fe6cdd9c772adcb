"""The demo dataset: Maison Aubépine's stores, customers, purchases, consents and page views.

Everything is drawn from one `random.Random(seed)` against a fixed anchor date, so every run writes the same rows
and the emails printed in the README always sign in to the same histories. Rows are built in memory with their ids
assigned here — lines point at their purchase without a round trip — then written with Core bulk inserts in one
transaction. The summary tables (`purchase_total`, `page_view_day`) are computed from the very same rows, exactly as
`portal.purchases.records` keeps them for live writes.

Three customers matter to the demo (`DEMO_CUSTOMERS`): a heavy customer with 10,000 purchases and 100,000 page
views, who shows that the pages stay fast whatever the history, and two ordinary ones, French- and English-speaking;
the English one never consented to browsing analytics, so one demo account holds no browsing data at all.

The privacy requests, with their timelines and audit trail, come from `portal.demo.privacy_requests`, written in the
same transaction once the demo staff exist (they act on the requests).
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from pathlib import Path
from time import perf_counter
from typing import Any, NamedTuple
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, MetaData, Table, func, select, text
from sqlmodel import SQLModel

from portal.consent.register import PurposeRegister, load_register
from portal.demo.privacy_requests import build_requests, demo_staff, write_requests
from portal.identity.passwords import hash_password
from portal.models import (
    ConsentEvent,
    Customer,
    PageView,
    PageViewDay,
    PageViewTotal,
    PrivacyRequest,
    Purchase,
    PurchaseLine,
    PurchaseTotal,
    StaffUser,
    Store,
    email_key,
)
from portal.models.commerce import STORE_KIND_SHOP, STORE_KIND_WEB
from portal.models.requests import OPEN_STATUSES

Row = dict[str, Any]

# A fixed "now": the dataset must not depend on the day it is generated.
ANCHOR = datetime(2026, 11, 1, 9, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")

DEMO_CUSTOMERS: tuple[str, str, str] = (
    "camille.durand@example.com",
    "leo.bernard@example.org",
    "emma.wilson@example.net",
)

# Back-office accounts (README.md, "Signing in as demo staff"): documented passwords, no authenticator yet, so the
# first sign-in shows the enrolment page. Demo only: these passwords are public.
DEMO_STAFF: tuple[tuple[str, str, str, str | None, str], ...] = (
    # (email, name, role, store code, password)
    ("agent@maison-aubepine.example", "Inès Moreau", "agent", None, "demo-agent-2026"),
    ("dpo@maison-aubepine.example", "Julien Lefèvre", "dpo", None, "demo-dpo-2026"),
    ("lyon.partdieu@maison-aubepine.example", "Sarah Martin", "store", "LYO-01", "demo-store-2026"),
)

CUSTOMER_COUNT = 320
HISTORY_DAYS = 6 * 365 + 1
HEAVY_PURCHASES = 10_000
HEAVY_PAGE_VIEWS = 100_000
ORDINARY_PURCHASES = (40, 180)
ORDINARY_PAGE_VIEWS = (20, 400)
MIN_ORDINARY_PURCHASES = 30_000
# Browsing data is kept 13 months (the browsing purpose's retention in portal/config/purposes.toml): page views fit
# in the last 12, so that a retention purge run on the demo database leaves the demo as it is.
BROWSING_HISTORY_DAYS = 365
CHUNK_SIZE = 5_000

SITE = "https://www.maison-aubepine.example"
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606: never a real mailbox
# The register the demo's consents were given under: its [[policy.previous]] versions date the older answers.
PURPOSES_FILE = Path(__file__).resolve().parent.parent / "config" / "purposes.toml"
BROWSING = "browsing_analytics"
# Share of customers granting each purpose at some point; browsing analytics is the one the demo shows most.
PURPOSE_RATES: dict[str, float] = {
    "email_newsletter": 0.62,
    "sms_offers": 0.28,
    "phone_calls": 0.09,
    "postal_mail": 0.34,
    "personalised_offers": 0.41,
    BROWSING: 0.45,
    "partner_sharing": 0.07,
}
PURPOSES = tuple(PURPOSE_RATES)
WITHDRAWAL_RATE = 0.18
# The heavy customer's ledger is written out, so that her consent page always shows a withdrawal and a renewed
# grant: purpose -> (days after her account was opened, granted, channel).
HEAVY_CONSENTS: dict[str, tuple[tuple[int, bool, str], ...]] = {
    "email_newsletter": ((0, True, "store"), (812, False, "web"), (1530, True, "web")),
    "sms_offers": ((0, True, "store"), (401, False, "web")),
    "postal_mail": ((0, True, "store"),),
    "personalised_offers": ((233, True, "web"),),
    BROWSING: ((2, True, "web"),),
}
REGRANT_RATE = 0.25
SIGNUP_CONSENT_RATE = 0.55  # consents ticked when the account was opened, the rest given later

SHOP_OPENS = 9 * 60 + 30  # minutes after local midnight
SHOP_CLOSES = 19 * 60 + 30
SHOP_CLOSED_DAYS = {(1, 1), (5, 1), (12, 25)}  # (month, day); shops also close on Sundays
CLICK_AND_COLLECT_RATE = 0.3


# --- Stores ------------------------------------------------------------------------------------------------------


class _StoreSpec(NamedTuple):
    code: str
    name: str
    city: str | None
    kind: str = STORE_KIND_SHOP


STORES: tuple[_StoreSpec, ...] = (
    _StoreSpec("LYO-01", "Maison Aubépine Lyon Part-Dieu", "Lyon"),
    _StoreSpec("LYO-02", "Maison Aubépine Lyon Confluence", "Lyon"),
    _StoreSpec("PAR-01", "Maison Aubépine Paris Bastille", "Paris"),
    _StoreSpec("PAR-02", "Maison Aubépine Paris Batignolles", "Paris"),
    _StoreSpec("BDX-01", "Maison Aubépine Bordeaux Chartrons", "Bordeaux"),
    _StoreSpec("MRS-01", "Maison Aubépine Marseille Prado", "Marseille"),
    _StoreSpec("TLS-01", "Maison Aubépine Toulouse Capitole", "Toulouse"),
    _StoreSpec("NTE-01", "Maison Aubépine Nantes Graslin", "Nantes"),
    _StoreSpec("LIL-01", "Maison Aubépine Lille Vieux-Lille", "Lille"),
    _StoreSpec("SXB-01", "Maison Aubépine Strasbourg Krutenau", "Strasbourg"),
    _StoreSpec("REN-01", "Maison Aubépine Rennes Colombier", "Rennes"),
    _StoreSpec("NCE-01", "Maison Aubépine Nice Libération", "Nice"),
    _StoreSpec("WEB", "maison-aubepine.example", None, STORE_KIND_WEB),
)
STORE_IDS = {spec.code: store_id for store_id, spec in enumerate(STORES, start=1)}
WEB_ID = STORE_IDS["WEB"]
SHOP_IDS = tuple(store_id for code, store_id in STORE_IDS.items() if code != "WEB")


# --- Where customers live ----------------------------------------------------------------------------------------


class _City(NamedTuple):
    name: str
    weight: int  # share of the customers living there
    shops: tuple[str, ...]  # nearest shops first; none for the United Kingdom
    streets: tuple[tuple[str, str], ...]  # (street, postcode in France / outward code in the UK)
    remote: bool = False  # no shop in town: these customers mostly buy online


FRENCH_CITIES: tuple[_City, ...] = (
    _City(
        "Paris",
        22,
        ("PAR-01", "PAR-02"),
        (
            ("rue de la Roquette", "75011"),
            ("boulevard Voltaire", "75011"),
            ("rue Oberkampf", "75011"),
            ("rue de Charonne", "75011"),
            ("rue de Bretagne", "75003"),
            ("rue Mouffetard", "75005"),
            ("rue des Martyrs", "75009"),
            ("rue Saint-Maur", "75010"),
            ("avenue Daumesnil", "75012"),
            ("rue du Commerce", "75015"),
            ("rue de Vaugirard", "75015"),
            ("rue de Lévis", "75017"),
            ("rue des Dames", "75017"),
            ("rue Lepic", "75018"),
            ("rue des Pyrénées", "75020"),
        ),
    ),
    _City(
        "Lyon",
        16,
        ("LYO-01", "LYO-02"),
        (
            ("montée de la Grande-Côte", "69001"),
            ("rue Mercière", "69002"),
            ("rue de la République", "69002"),
            ("rue Victor Hugo", "69002"),
            ("cours Lafayette", "69003"),
            ("rue Paul Bert", "69003"),
            ("Grande Rue de la Croix-Rousse", "69004"),
            ("cours Vitton", "69006"),
            ("rue Garibaldi", "69006"),
            ("rue de Marseille", "69007"),
            ("avenue Jean Jaurès", "69007"),
        ),
    ),
    _City(
        "Marseille",
        9,
        ("MRS-01",),
        (
            ("La Canebière", "13001"),
            ("boulevard Longchamp", "13001"),
            ("rue Paradis", "13006"),
            ("rue de Rome", "13006"),
            ("cours Julien", "13006"),
            ("rue d'Endoume", "13007"),
            ("avenue du Prado", "13008"),
        ),
    ),
    _City(
        "Bordeaux",
        8,
        ("BDX-01",),
        (
            ("rue Sainte-Catherine", "33000"),
            ("cours de l'Intendance", "33000"),
            ("cours Victor Hugo", "33000"),
            ("rue Notre-Dame", "33000"),
            ("quai des Chartrons", "33000"),
            ("cours de la Marne", "33800"),
        ),
    ),
    _City(
        "Toulouse",
        8,
        ("TLS-01",),
        (
            ("rue d'Alsace-Lorraine", "31000"),
            ("rue de Metz", "31000"),
            ("rue du Taur", "31000"),
            ("allées Jean Jaurès", "31000"),
            ("rue Pargaminières", "31000"),
            ("avenue de Muret", "31300"),
        ),
    ),
    _City(
        "Nantes",
        7,
        ("NTE-01",),
        (
            ("rue Crébillon", "44000"),
            ("rue de Strasbourg", "44000"),
            ("quai de la Fosse", "44000"),
            ("rue Paul Bellamy", "44000"),
            ("boulevard Guist'hau", "44000"),
        ),
    ),
    _City(
        "Lille",
        7,
        ("LIL-01",),
        (
            ("rue de Béthune", "59000"),
            ("rue Nationale", "59000"),
            ("rue Solférino", "59000"),
            ("rue Esquermoise", "59800"),
            ("rue de Paris", "59800"),
        ),
    ),
    _City(
        "Strasbourg",
        6,
        ("SXB-01",),
        (
            ("Grand'Rue", "67000"),
            ("quai des Bateliers", "67000"),
            ("rue d'Austerlitz", "67000"),
            ("avenue des Vosges", "67000"),
            ("rue de la Krutenau", "67000"),
        ),
    ),
    _City(
        "Rennes",
        6,
        ("REN-01",),
        (
            ("rue de Saint-Malo", "35000"),
            ("rue Saint-Hélier", "35000"),
            ("boulevard de la Liberté", "35000"),
            ("rue de Paris", "35000"),
            ("quai Lamartine", "35000"),
        ),
    ),
    _City(
        "Nice",
        6,
        ("NCE-01",),
        (
            ("avenue Jean Médecin", "06000"),
            ("rue de France", "06000"),
            ("boulevard Gambetta", "06000"),
            ("avenue de la Californie", "06200"),
            ("rue Bonaparte", "06300"),
        ),
    ),
    _City(
        "Montpellier",
        3,
        ("MRS-01",),
        (
            ("rue de la Loge", "34000"),
            ("rue Foch", "34000"),
            ("boulevard du Jeu de Paume", "34000"),
            ("avenue de Lodève", "34070"),
        ),
        remote=True,
    ),
    _City(
        "Dijon",
        2,
        ("LYO-01",),
        (
            ("rue de la Liberté", "21000"),
            ("rue Chabot-Charny", "21000"),
            ("boulevard de Brosses", "21000"),
            ("rue Monge", "21000"),
        ),
        remote=True,
    ),
)

UK_CITIES: tuple[_City, ...] = (
    _City(
        "London",
        6,
        (),
        (
            ("Upper Street", "N1"),
            ("Camden High Street", "NW1"),
            ("King's Road", "SW3"),
            ("Mare Street", "E8"),
            ("Northcote Road", "SW11"),
            ("Portobello Road", "W11"),
        ),
    ),
    _City("Manchester", 2, (), (("Deansgate", "M3"), ("Oldham Street", "M1"))),
    _City("Bristol", 2, (), (("Gloucester Road", "BS7"), ("Whiteladies Road", "BS8"))),
    _City("Edinburgh", 1, (), (("Leith Walk", "EH6"), ("Broughton Street", "EH1"))),
    _City("Brighton", 1, (), (("Western Road", "BN1"),)),
)

FRENCH_CITY_WEIGHTS = tuple(accumulate(city.weight for city in FRENCH_CITIES))
UK_CITY_WEIGHTS = tuple(accumulate(city.weight for city in UK_CITIES))
ADDRESS_LINE2 = ("Appartement {n}", "Bâtiment B", "Escalier C", "Résidence Les Glycines", "Porte {n}")
UK_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # letters the Royal Mail uses in the inward code


def _names(names: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in names.split(","))


FRENCH_FIRST_NAMES = _names(
    "Camille, Léa, Chloé, Manon, Inès, Sarah, Julie, Emma, Louise, Zoé, Clara, Alice, Anaïs, Mathilde, Pauline, "
    "Marion, Céline, Sophie, Isabelle, Nathalie, Sandrine, Hélène, Claire, Élodie, Margaux, Noémie, Maëlle, Juliette, "
    "Agathe, Valérie, Léo, Lucas, Hugo, Louis, Nathan, Gabriel, Arthur, Jules, Raphaël, Thomas, Maxime, Antoine, "
    "Nicolas, Julien, Pierre, Mathieu, Guillaume, Sébastien, Olivier, Laurent, Jérôme, Frédéric, Benoît, Cédric, "
    "Bruno, Patrick, Théo, Baptiste, Étienne, François"
)
FRENCH_LAST_NAMES = _names(
    "Martin, Bernard, Thomas, Petit, Robert, Richard, Durand, Dubois, Moreau, Laurent, Simon, Michel, Lefèvre, "
    "Leroy, Roux, David, Bertrand, Morel, Fournier, Girard, Bonnet, Dupont, Lambert, Fontaine, Rousseau, Vincent, "
    "Muller, Faure, André, Mercier, Blanc, Guérin, Boyer, Garnier, Chevalier, François, Legrand, Gauthier, Garcia, "
    "Perrin, Robin, Clément, Morin, Nicolas, Henry, Roussel, Mathieu, Masson, Marchand, Duval, Denis, Dumont, "
    "Lemaire, Noël, Meyer, Dufour, Meunier, Brun, Blanchard, Giraud, Joly, Rivière, Lucas, Brunet, Gaillard, "
    "Barbier, Arnaud, Gérard, Roche, Renard, Schmitt, Roy, Leroux, Colin, Vidal, Caron, Picard, Fabre, Aubert, "
    "Lemoine, Renaud, Dumas, Lacroix, Olivier, Bourgeois, Rey, Leclerc, Guillaume, Lecomte, Dupuy, Hubert, Berger, "
    "Carpentier, Moulin, Deschamps, Huet, Fleury, Klein, Jacquet, Poirier, Marty, Carré, Ménard, Le Gall, Le Goff, "
    "Da Silva, Prévost, Langlois, Pelletier, Lévêque, Barthélemy, Delaunay, Laporte"
)
ENGLISH_FIRST_NAMES = _names(
    "Emma, Oliver, Charlotte, Harry, Amelia, George, Olivia, Jack, Sophie, James, Grace, William, Lucy, Henry, "
    "Hannah, Daniel, Chloe, Samuel, Emily, Joshua, Jessica, Matthew, Isabel, Alice, Thomas"
)
ENGLISH_LAST_NAMES = _names(
    "Smith, Jones, Taylor, Brown, Williams, Wilson, Johnson, Davies, Robinson, Wright, Thompson, Evans, Walker, "
    "White, Roberts, Green, Hall, Wood, Jackson, Clarke, Hughes, Edwards, Turner, Cooper, Hill"
)


# --- What the shop sells and shows -------------------------------------------------------------------------------


class _Product(NamedTuple):
    sku: str
    label: str
    price_cents: int
    category: str


CATEGORIES: dict[str, str] = {
    "outils-de-jardin": "Outils de jardin",
    "arrosage": "Arrosage",
    "plantes-et-graines": "Plantes et graines",
    "mobilier-de-jardin": "Mobilier de jardin",
    "decoration": "Décoration",
    "cuisine-et-table": "Cuisine et arts de la table",
    "linge-de-maison": "Linge de maison",
    "luminaires": "Luminaires",
    "rangement": "Rangement",
    "entretien": "Entretien de la maison",
}

CATALOGUE: tuple[_Product, ...] = (
    _Product("OUT-1001", "Sécateur à lame franche", 2490, "outils-de-jardin"),
    _Product("OUT-1002", "Bêche en acier forgé", 3990, "outils-de-jardin"),
    _Product("OUT-1003", "Râteau à feuilles en bambou", 1690, "outils-de-jardin"),
    _Product("OUT-1004", "Transplantoir inox", 890, "outils-de-jardin"),
    _Product("OUT-1005", "Gants de jardinage en cuir", 1290, "outils-de-jardin"),
    _Product("OUT-1006", "Cisaille à haies", 3490, "outils-de-jardin"),
    _Product("OUT-1007", "Binette manche en frêne", 2290, "outils-de-jardin"),
    _Product("ARR-2001", "Arrosoir galvanisé 10 L", 2990, "arrosage"),
    _Product("ARR-2002", "Tuyau d'arrosage 25 m", 3490, "arrosage"),
    _Product("ARR-2003", "Pistolet d'arrosage 7 jets", 1190, "arrosage"),
    _Product("ARR-2004", "Enrouleur de tuyau mural", 5990, "arrosage"),
    _Product("ARR-2005", "Récupérateur d'eau de pluie 300 L", 8990, "arrosage"),
    _Product("ARR-2006", "Programmateur d'arrosage", 3990, "arrosage"),
    _Product("PLA-3001", "Terreau universel 40 L", 990, "plantes-et-graines"),
    _Product("PLA-3002", "Graines de tomates anciennes", 350, "plantes-et-graines"),
    _Product("PLA-3003", "Bulbes de tulipes, lot de 20", 790, "plantes-et-graines"),
    _Product("PLA-3004", "Olivier en pot 80 cm", 4990, "plantes-et-graines"),
    _Product("PLA-3005", "Lavande vraie, pot de 2 L", 690, "plantes-et-graines"),
    _Product("PLA-3006", "Engrais bio pour potager 1,5 kg", 1290, "plantes-et-graines"),
    _Product("PLA-3007", "Pot en terre cuite 30 cm", 1990, "plantes-et-graines"),
    _Product("MOB-4001", "Chaise pliante en teck", 7990, "mobilier-de-jardin"),
    _Product("MOB-4002", "Table de jardin en acier, 6 places", 34900, "mobilier-de-jardin"),
    _Product("MOB-4003", "Transat en toile rayée", 8990, "mobilier-de-jardin"),
    _Product("MOB-4004", "Coussin d'extérieur 40 × 40 cm", 1990, "mobilier-de-jardin"),
    _Product("MOB-4005", "Parasol droit 3 m", 12900, "mobilier-de-jardin"),
    _Product("MOB-4006", "Banc en acacia", 19900, "mobilier-de-jardin"),
    _Product("DEC-5001", "Bougie parfumée figuier", 1890, "decoration"),
    _Product("DEC-5002", "Vase en grès émaillé", 2990, "decoration"),
    _Product("DEC-5003", "Miroir rond en rotin", 5990, "decoration"),
    _Product("DEC-5004", "Cadre photo en chêne 20 × 25 cm", 1490, "decoration"),
    _Product("DEC-5005", "Lanterne en métal noir", 2490, "decoration"),
    _Product("DEC-5006", "Corbeille en osier", 2290, "decoration"),
    _Product("CUI-6001", "Assiettes plates en grès, lot de 4", 3590, "cuisine-et-table"),
    _Product("CUI-6002", "Carafe en verre recyclé 1 L", 1590, "cuisine-et-table"),
    _Product("CUI-6003", "Planche à découper en olivier", 2790, "cuisine-et-table"),
    _Product("CUI-6004", "Torchons en lin, lot de 2", 1490, "cuisine-et-table"),
    _Product("CUI-6005", "Théière en fonte 0,8 L", 3990, "cuisine-et-table"),
    _Product("CUI-6006", "Bol en céramique", 690, "cuisine-et-table"),
    _Product("CUI-6007", "Verres à eau, lot de 6", 1990, "cuisine-et-table"),
    _Product("LIN-7001", "Plaid en laine mérinos", 5990, "linge-de-maison"),
    _Product("LIN-7002", "Housse de couette en lin lavé 240 × 220", 11900, "linge-de-maison"),
    _Product("LIN-7003", "Nappe en coton enduit", 3490, "linge-de-maison"),
    _Product("LIN-7004", "Coussin en velours côtelé", 2490, "linge-de-maison"),
    _Product("LIN-7005", "Serviette de bain en coton bio", 1790, "linge-de-maison"),
    _Product("LIN-7006", "Rideau en lin 140 × 260", 4990, "linge-de-maison"),
    _Product("LUM-8001", "Guirlande lumineuse solaire", 2490, "luminaires"),
    _Product("LUM-8002", "Lampe à poser en céramique", 4990, "luminaires"),
    _Product("LUM-8003", "Suspension en rotin", 6990, "luminaires"),
    _Product("LUM-8004", "Ampoule LED filament E27", 690, "luminaires"),
    _Product("LUM-8005", "Applique murale en laiton", 5990, "luminaires"),
    _Product("LUM-8006", "Lampe tempête", 1990, "luminaires"),
    _Product("RAN-9001", "Panier en jonc de mer", 2490, "rangement"),
    _Product("RAN-9002", "Boîte de rangement en métal", 1290, "rangement"),
    _Product("RAN-9003", "Étagère murale en chêne", 3990, "rangement"),
    _Product("RAN-9004", "Porte-manteau en hêtre", 2990, "rangement"),
    _Product("RAN-9005", "Malle en rotin", 8990, "rangement"),
    _Product("ENT-9501", "Savon noir à l'huile de lin 1 L", 690, "entretien"),
    _Product("ENT-9502", "Brosse à vaisselle en hêtre", 490, "entretien"),
    _Product("ENT-9503", "Cire d'abeille pour meubles", 1190, "entretien"),
    _Product("ENT-9504", "Balai en fibres naturelles", 2290, "entretien"),
    _Product("ENT-9505", "Vinaigre ménager 1 L", 390, "entretien"),
    _Product("ENT-9506", "Éponges végétales, lot de 3", 450, "entretien"),
)
# Soap and compost sell far more often than garden tables.
CATALOGUE_WEIGHTS = tuple(accumulate(10_000 / math.sqrt(product.price_cents) for product in CATALOGUE))
LINE_COUNTS = (1, 2, 3, 4, 5)
LINE_COUNT_WEIGHTS = tuple(accumulate((34, 30, 18, 11, 7)))
QUANTITIES = (1, 2, 3)
QUANTITY_WEIGHTS = tuple(accumulate((76, 17, 7)))

SEARCHES = ("arrosoir", "terreau", "plaid laine", "table de jardin", "théière", "bougie", "coussin", "olivier")
INSPIRATIONS = {"balcon-fleuri": "un balcon fleuri", "table-d-ete": "une table d'été", "potager": "un petit potager"}
BROWSING_HOURS = tuple(range(7, 24))
# Evenings and lunch breaks, when people browse from home or their phone.
BROWSING_HOUR_WEIGHTS = tuple(accumulate((2, 3, 4, 4, 4, 6, 6, 4, 3, 3, 4, 5, 6, 8, 8, 6, 2)))


def _slug(label: str) -> str:
    ascii_label = _ascii(label)
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_label).split())


def _ascii(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _site_pages() -> tuple[tuple[tuple[str, str], ...], tuple[float, ...]]:
    """The web shop's pages as (url, title) with how often each is visited (cumulative weights)."""
    pages: list[tuple[tuple[str, str], int]] = [
        ((f"{SITE}/", "Maison Aubépine – maison et jardin"), 40),
        ((f"{SITE}/panier", "Mon panier – Maison Aubépine"), 22),
        ((f"{SITE}/commande/livraison", "Livraison – Maison Aubépine"), 6),
        ((f"{SITE}/mon-compte/commandes", "Mes commandes – Maison Aubépine"), 8),
        ((f"{SITE}/magasins", "Nos magasins – Maison Aubépine"), 5),
    ]
    pages += [((f"{SITE}/rayon/{slug}", f"{name} – Maison Aubépine"), 12) for slug, name in CATEGORIES.items()]
    pages += [
        ((f"{SITE}/produit/{p.sku.lower()}-{_slug(p.label)}", f"{p.label} – Maison Aubépine"), 6) for p in CATALOGUE
    ]
    pages += [
        ((f"{SITE}/recherche?q={quote_plus(term)}", f"Recherche « {term} » – Maison Aubépine"), 4) for term in SEARCHES
    ]
    pages += [
        ((f"{SITE}/inspiration/{slug}", f"Idées pour {idea} – Maison Aubépine"), 3)
        for slug, idea in INSPIRATIONS.items()
    ]
    return tuple(page for page, _ in pages), tuple(accumulate(weight for _, weight in pages))


SITE_PAGES, SITE_PAGE_WEIGHTS = _site_pages()


# --- The summary -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    """What the demo database holds, and how long it took to generate (0 when it was already there)."""

    customers: int
    stores: int
    purchases: int
    purchase_lines: int
    page_views: int
    consent_events: int
    seconds: float
    generated: bool = True
    privacy_requests: int = 0
    open_requests: int = 0

    def describe(self) -> str:
        if self.generated:
            state = f"Demo data generated in {self.seconds:.1f} s"
        else:
            state = "Demo data already present (portal demo --reset regenerates it)"
        return (
            f"{state}: {self.customers:,} customers, {self.stores} stores, {self.purchases:,} purchases "
            f"({self.purchase_lines:,} lines), {self.page_views:,} page views, "
            f"{self.consent_events:,} consent events, {self.privacy_requests} privacy requests "
            f"({self.open_requests} open)."
        )


def ensure_demo_data(
    engine: Engine, *, reset: bool = False, seed: int = 2026, now: datetime | None = None
) -> DemoSummary:
    """Generate the demo dataset unless the database already holds customers; `reset` replaces what is there."""
    if not reset:
        with engine.begin() as connection:
            if connection.execute(select(func.count()).select_from(_table(Customer))).scalar_one():
                ensure_demo_staff(connection, now=_resolve_now(now))  # a demo database older than the back office
                return _summary(connection, seconds=0.0, generated=False)
    return _generate(engine, seed=seed, now=now, reset=reset)


def generate(engine: Engine, *, seed: int = 2026, now: datetime | None = None) -> DemoSummary:
    """Write the demo dataset into an empty, migrated database, in one transaction."""
    return _generate(engine, seed=seed, now=now, reset=False)


def _generate(engine: Engine, *, seed: int, now: datetime | None, reset: bool) -> DemoSummary:
    started = perf_counter()
    rows = _build(random.Random(seed), _resolve_now(now))
    # Requests count back from the wall clock, so that the queue always holds due-soon and overdue requests; their
    # own generator leaves the rest of the dataset as it was.
    requests_now = _resolve_now(now) if now is not None else datetime.now(UTC)
    with engine.begin() as connection:
        if reset:
            _delete_everything(connection)
        _write(connection, rows)
        ensure_demo_staff(connection, now=_resolve_now(now))
        requests = build_requests(
            random.Random(f"requests-{seed}"),
            now=requests_now,
            customers=rows.customers,
            consent_events=rows.consent_events,
            staff=demo_staff(connection, [email for email, *_ in DEMO_STAFF]),
            shop_for_city={city.name: STORE_IDS[city.shops[0]] for city in FRENCH_CITIES},
            shop_ids=SHOP_IDS,
        )
        write_requests(connection, requests)
        counts = _summary(connection, seconds=0.0)
    return replace(counts, seconds=perf_counter() - started)


def _resolve_now(now: datetime | None) -> datetime:
    if now is None:
        return ANCHOR
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(UTC)


# --- Building the rows -------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What a customer's history will hold besides the profile: where they shop, how much, how they browse."""

    customer_id: int
    created_at: datetime
    signup_channel: str  # store | web | import, the channel of the consents given when the account was opened
    stores: tuple[int, ...]
    store_weights: tuple[int, ...]
    purchases: int
    page_views: int  # if they currently consent to browsing analytics
    browsing: bool | None = None  # forced browsing consent for the demo customers; None draws it
    consents: dict[str, tuple[tuple[int, bool, str], ...]] | None = None  # a written-out ledger, not a drawn one

    @property
    def later_channels(self) -> tuple[str, ...]:
        """Where consents are changed after sign-up: online, or at the till for those who come to the shops."""
        return ("web",) if self.stores == (WEB_ID,) else ("web", "web", "store")


@dataclass
class _Rows:
    stores: list[Row]
    customers: list[Row]
    consent_events: list[Row]
    purchases: list[Row]
    purchase_lines: list[Row]
    purchase_totals: list[Row]
    page_views: list[Row]
    page_view_days: list[Row]
    page_view_totals: list[Row]

    def in_insert_order(self) -> Iterator[tuple[type[SQLModel], list[Row]]]:
        yield Store, self.stores
        yield Customer, self.customers
        yield ConsentEvent, self.consent_events
        yield Purchase, self.purchases
        yield PurchaseLine, self.purchase_lines
        yield PurchaseTotal, self.purchase_totals
        yield PageView, self.page_views
        yield PageViewDay, self.page_view_days
        yield PageViewTotal, self.page_view_totals


def _build(rng: random.Random, now: datetime) -> _Rows:
    # The order of the steps is part of the output: each draws from the same generator.
    customers, plans = _customers(rng, now)
    consent_events, browsing_since = _consents(rng, plans, now)
    purchases, lines, totals = _purchases(rng, plans, now)
    page_views, page_view_days = _page_views(rng, plans, browsing_since, now)
    stores = [
        {"id": store_id, "code": spec.code, "name": spec.name, "city": spec.city, "kind": spec.kind}
        for store_id, spec in enumerate(STORES, start=1)
    ]
    return _Rows(
        stores,
        customers,
        consent_events,
        purchases,
        lines,
        totals,
        page_views,
        page_view_days,
        _page_view_totals(page_views),
    )


def _page_view_totals(page_views: list[Row]) -> list[Row]:
    totals: dict[int, Row] = {}
    for view in page_views:
        total = totals.setdefault(
            view["customer_id"],
            {"customer_id": view["customer_id"], "view_count": 0, "last_viewed_at": view["viewed_at"]},
        )
        total["view_count"] += 1
        total["last_viewed_at"] = max(total["last_viewed_at"], view["viewed_at"])
    return list(totals.values())


def _local_day(moment: datetime) -> int:
    return moment.astimezone(PARIS).date().toordinal()


def _at_local(day: int, seconds: int) -> datetime:
    """The UTC instant of a wall-clock time in Paris, `seconds` after midnight of the ordinal `day`."""
    midnight = datetime.combine(date.fromordinal(day), time(), PARIS)
    return (midnight + timedelta(seconds=seconds)).astimezone(UTC)


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.randint(0, max(0, int((end - start).total_seconds()))))


# Customers


def _demo_customers(now: datetime) -> list[tuple[Row, _Plan]]:
    """The three accounts the README names, with fixed profiles so that screenshots and docs stay true."""
    camille_since = now - timedelta(days=HISTORY_DAYS + 9) + timedelta(hours=2, minutes=13)
    leo_since = now - timedelta(days=1392) + timedelta(hours=10, minutes=41)
    emma_since = now - timedelta(days=822) + timedelta(hours=11, minutes=7)
    camille = _customer_row(
        1,
        DEMO_CUSTOMERS[0],
        "Camille",
        "Durand",
        phone="+33639980417",
        address=("48 rue Mercière", "3e étage, porte droite", "69002", "Lyon", "FR"),
        birth_date=date(1983, 4, 12),
        loyalty_number="AUB-20417365",
        language="fr",
        source="store",
        created_at=camille_since,
        updated_at=now - timedelta(days=41, hours=3),
    )
    leo = _customer_row(
        2,
        DEMO_CUSTOMERS[1],
        "Léo",
        "Bernard",
        phone="+33639981252",
        address=("27 rue de la Roquette", None, "75011", "Paris", "FR"),
        birth_date=None,
        loyalty_number="AUB-58302914",
        language="fr",
        source="web",
        created_at=leo_since,
        updated_at=leo_since + timedelta(days=210),
    )
    emma = _customer_row(
        3,
        DEMO_CUSTOMERS[2],
        "Emma",
        "Wilson",
        phone="+447700900461",
        address=("14 Upper Street", None, "N1 0PN", "London", "GB"),
        birth_date=date(1991, 7, 23),
        loyalty_number=None,
        language="en",
        source="web",
        created_at=emma_since,
        updated_at=emma_since,
    )

    def ids(*codes: str) -> tuple[int, ...]:
        return tuple(STORE_IDS[code] for code in codes)

    return [
        (
            camille,
            _Plan(
                1,
                camille_since,
                "store",
                ids("LYO-01", "LYO-02", "PAR-01", "PAR-02", "MRS-01", "NCE-01", "BDX-01", "WEB"),
                (38, 20, 6, 3, 4, 4, 2, 23),
                HEAVY_PURCHASES,
                HEAVY_PAGE_VIEWS,
                consents=HEAVY_CONSENTS,
            ),
        ),
        (leo, _Plan(2, leo_since, "web", ids("PAR-01", "PAR-02", "WEB"), (50, 15, 35), 126, 240, browsing=True)),
        (emma, _Plan(3, emma_since, "web", ids("WEB", "PAR-01"), (85, 15), 58, 0, browsing=False)),
    ]


def _customer_row(
    customer_id: int,
    email: str,
    first_name: str,
    last_name: str,
    *,
    phone: str | None,
    address: tuple[str, str | None, str, str, str] | None,
    birth_date: date | None,
    loyalty_number: str | None,
    language: str,
    source: str,
    created_at: datetime,
    updated_at: datetime,
) -> Row:
    line1, line2, postal_code, city, country = address or (None, None, None, None, None)
    return {
        "id": customer_id,
        "retailer_ref": f"C{customer_id:07d}",  # the retailer's CRM number, used by its systems on the API
        "email": email,
        "email_key": email_key(email),
        "first_name": first_name,
        "last_name": last_name,
        "phone": phone,
        "address_line1": line1,
        "address_line2": line2,
        "postal_code": postal_code,
        "city": city,
        "country": country,
        "birth_date": birth_date,
        "loyalty_number": loyalty_number,
        "preferred_language": language,
        "source": source,
        "created_at": created_at,
        "updated_at": updated_at,
        "restricted_at": None,
        "erased_at": None,
        "erased_email_hash": None,
    }


class _Unique:
    """Values already handed out (emails, phones, loyalty numbers), so that each is drawn only once."""

    def __init__(self, taken: Sequence[str]) -> None:
        self.taken = set(taken)

    def draw(self, make: Callable[[], str]) -> str:
        while (value := make()) in self.taken:
            pass
        self.taken.add(value)
        return value


def _customers(rng: random.Random, now: datetime) -> tuple[list[Row], list[_Plan]]:
    demo = _demo_customers(now)
    rows = [row for row, _ in demo]
    plans = [plan for _, plan in demo]
    taken = [value for row in rows for value in (row["email"], row["phone"], row["loyalty_number"]) if value]
    unique = _Unique(taken)
    # The old loyalty-card file was imported once, the day the customer database opened.
    imported_at = now - timedelta(days=HISTORY_DAYS - 120, hours=6)
    for customer_id in range(len(rows) + 1, CUSTOMER_COUNT + 1):
        row, plan = _ordinary_customer(rng, customer_id, now, imported_at, unique)
        rows.append(row)
        plans.append(plan)
    _reach_ordinary_minimum(rng, plans[1:])
    return rows, plans


def _ordinary_customer(
    rng: random.Random, customer_id: int, now: datetime, imported_at: datetime, unique: _Unique
) -> tuple[Row, _Plan]:
    english = rng.random() < 0.12
    in_uk = english and rng.random() < 0.6
    first_names, last_names = (
        (ENGLISH_FIRST_NAMES, ENGLISH_LAST_NAMES) if english else (FRENCH_FIRST_NAMES, FRENCH_LAST_NAMES)
    )
    first_name, last_name = rng.choice(first_names), rng.choice(last_names)
    city = rng.choices(
        UK_CITIES if in_uk else FRENCH_CITIES, cum_weights=UK_CITY_WEIGHTS if in_uk else FRENCH_CITY_WEIGHTS
    )[0]
    source = "web" if in_uk else rng.choices(("store", "web", "import"), (55, 30, 15))[0]
    if source == "import":
        created_at = imported_at + timedelta(seconds=rng.randint(0, 3 * 3600))
    else:
        # Older customers are more numerous: the shops opened long before the web shop grew.
        tenure = 30 + (HISTORY_DAYS - 30) * rng.random() ** 0.7
        day = _local_day(now - timedelta(days=tenure))
        # Accounts opened at a till are opened while the shop is open.
        created_at = _shop_time(rng, day - 6, day) if source == "store" else _web_time(rng, day, day)
    updated_at = created_at if rng.random() < 0.35 else _between(rng, created_at, now - timedelta(days=1))
    uk_phone = in_uk or (english and rng.random() < 0.3)
    row = _customer_row(
        customer_id,
        unique.draw(lambda: _email(rng, first_name, last_name)),
        first_name,
        last_name,
        phone=unique.draw(lambda: _phone(rng, uk=uk_phone)) if rng.random() < 0.8 else None,
        address=_address(rng, city, uk=in_uk) if in_uk or rng.random() < 0.92 else None,
        birth_date=date.fromordinal(rng.randint(date(1945, 1, 1).toordinal(), date(2006, 12, 31).toordinal()))
        if rng.random() < 0.55
        else None,
        loyalty_number=unique.draw(lambda: f"AUB-{rng.randint(10_000_000, 99_999_999)}")
        if rng.random() < (0.3 if in_uk else 0.62)
        else None,
        language="en" if english else "fr",
        source=source,
        created_at=created_at,
        updated_at=updated_at,
    )
    stores, weights = _favourite_stores(rng, city, in_uk=in_uk)
    plan = _Plan(
        customer_id,
        created_at,
        source,
        stores,
        weights,
        purchases=rng.randint(*ORDINARY_PURCHASES),
        page_views=rng.randint(*ORDINARY_PAGE_VIEWS),
    )
    return row, plan


def _email(rng: random.Random, first_name: str, last_name: str) -> str:
    first, last = _ascii(first_name).replace(" ", ""), _ascii(last_name).replace(" ", "").replace("'", "")
    local = rng.choice((f"{first}.{last}", f"{first}{last}", f"{first[0]}.{last}", f"{last}.{first}"))
    if rng.random() < 0.3:
        local += str(rng.randint(1, 99))
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def _phone(rng: random.Random, *, uk: bool) -> str:
    # Numbers reserved for fiction (ARCEP: 06 39 98 xx xx; Ofcom: 07700 900xxx), so no real phone ever rings.
    if uk:
        return f"+447700900{rng.randint(0, 999):03d}"
    return f"+3363998{rng.randint(0, 9999):04d}"


def _address(rng: random.Random, city: _City, *, uk: bool) -> tuple[str, str | None, str, str, str]:
    street, code = rng.choice(city.streets)
    line1 = f"{rng.randint(1, 140)}{' bis' if rng.random() < 0.05 else ''} {street}"
    if uk:
        inward = f"{rng.randint(0, 9)}{rng.choice(UK_INWARD_LETTERS)}{rng.choice(UK_INWARD_LETTERS)}"
        return line1, None, f"{code} {inward}", city.name, "GB"
    line2 = rng.choice(ADDRESS_LINE2).format(n=rng.randint(1, 9)) if rng.random() < 0.15 else None
    return line1, line2, code, city.name, "FR"


def _favourite_stores(rng: random.Random, city: _City, *, in_uk: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The stores a customer buys from, with how often; some buy only online."""
    if in_uk:
        if rng.random() < 0.15:  # a holiday in France now and then
            return (WEB_ID, STORE_IDS[rng.choice(("PAR-01", "NCE-01"))]), (90, 10)
        return (WEB_ID,), (1,)
    if rng.random() < 0.08:
        return (WEB_ID,), (1,)
    stores, weights = [STORE_IDS[city.shops[0]]], [25 if city.remote else 60]
    if len(city.shops) > 1 and rng.random() < 0.6:
        stores.append(STORE_IDS[city.shops[1]])
        weights.append(20)
    if rng.random() < 0.2:
        elsewhere = rng.choice([shop for shop in SHOP_IDS if shop not in stores])
        stores.append(elsewhere)
        weights.append(5)
    if city.remote or rng.random() < 0.55:
        stores.append(WEB_ID)
        weights.append(60 if city.remote else rng.randint(10, 45))
    return tuple(stores), tuple(weights)


def _reach_ordinary_minimum(rng: random.Random, plans: list[_Plan]) -> None:
    """Make sure the ordinary customers together have the promised number of purchases, whatever the seed."""
    missing = MIN_ORDINARY_PURCHASES - sum(plan.purchases for plan in plans)
    for _ in range(max(0, missing)):
        rng.choice(plans).purchases += 1


# Consents


def _consents(rng: random.Random, plans: list[_Plan], now: datetime) -> tuple[list[Row], dict[int, datetime]]:
    """The consent ledger, and since when each customer currently consents to browsing analytics."""
    events: list[tuple[datetime, int, int, bool, str]] = []
    browsing_since: dict[int, datetime] = {}
    for plan in plans:
        for purpose_index, purpose in enumerate(PURPOSES):
            history = _purpose_history(rng, plan, purpose, now)
            events += [(at, plan.customer_id, purpose_index, granted, channel) for at, granted, channel in history]
            if purpose == BROWSING and history and history[-1][1]:
                browsing_since[plan.customer_id] = history[-1][0]
    # Ids in time order, as an append-only ledger would have numbered them.
    events.sort()
    register = load_register(PURPOSES_FILE)
    rows = [
        {
            "id": event_id,
            "customer_id": customer_id,
            "purpose": PURPOSES[purpose_index],
            "granted": granted,
            "occurred_at": at,
            "channel": channel,
            "actor": "customer",
            "policy_version": _version_in_force(register, at),
            "wording_hash": None,
        }
        for event_id, (at, customer_id, purpose_index, granted, channel) in enumerate(events, start=1)
    ]
    return rows, browsing_since


def _version_in_force(register: PurposeRegister, at: datetime) -> str:
    """The policy version the customer was shown on the day of the answer. The demo's history starts after the
    first version; an answer before it (a register edited to start later) records the first one, the oldest wording
    the retailer can show."""
    return register.version_in_force(at.astimezone(PARIS).date()) or register.versions()[0][0]


def _purpose_history(rng: random.Random, plan: _Plan, purpose: str, now: datetime) -> list[tuple[datetime, bool, str]]:
    """(when, granted, channel) for one purpose: a grant, perhaps withdrawn, perhaps given again."""
    if plan.consents is not None:
        # A minute apart per purpose, as if ticked one after the other.
        offset = 60 * (PURPOSES.index(purpose) + 1)
        return [
            (plan.created_at + timedelta(days=days, seconds=offset), granted, channel)
            for days, granted, channel in plan.consents.get(purpose, ())
        ]
    forced = plan.browsing if purpose == BROWSING else None
    if not (forced if forced is not None else rng.random() < PURPOSE_RATES[purpose]):
        return []
    # Grants stop two weeks before `now` so that every current consent leaves room for page views after it.
    last_grant = now - timedelta(days=14)
    if forced or rng.random() < SIGNUP_CONSENT_RATE:
        granted_at = plan.created_at + timedelta(seconds=rng.randint(20, 900))
        channel = plan.signup_channel
    else:
        granted_at = _between(rng, plan.created_at + timedelta(days=1), last_grant)
        channel = rng.choice(plan.later_channels)
    history = [(granted_at, True, channel)]
    if forced or rng.random() >= WITHDRAWAL_RATE:
        return history
    withdrawn_at = _between(rng, granted_at + timedelta(days=1), now - timedelta(days=1))
    history.append((withdrawn_at, False, rng.choice(plan.later_channels)))
    if rng.random() < REGRANT_RATE and withdrawn_at + timedelta(days=2) < last_grant:
        history.append((_between(rng, withdrawn_at + timedelta(days=1), last_grant), True, "web"))
    return history


# Purchases


def _purchases(rng: random.Random, plans: list[_Plan], now: datetime) -> tuple[list[Row], list[Row], list[Row]]:
    """Purchases with their lines, and the per-customer, per-store, per-year totals computed from them."""
    moments: list[tuple[datetime, int, int, str]] = []
    last_day = _local_day(now) - 1  # nothing today: the day is not over
    for plan in plans:
        first_day = _local_day(plan.created_at) + 1
        for store_id in rng.choices(plan.stores, plan.store_weights, k=plan.purchases):
            if store_id == WEB_ID:
                channel = "click_and_collect" if rng.random() < CLICK_AND_COLLECT_RATE else "web"
                moments.append((_web_time(rng, first_day, last_day), plan.customer_id, store_id, channel))
            else:
                moments.append((_shop_time(rng, first_day, last_day), plan.customer_id, store_id, "in_store"))
    # Ids and receipt numbers in time order, as the tills would have issued them.
    moments.sort()
    purchases: list[Row] = []
    lines: list[Row] = []
    totals: dict[tuple[int, int, int], Row] = {}
    receipts: Counter[int] = Counter()
    for purchase_id, (purchased_at, customer_id, store_id, channel) in enumerate(moments, start=1):
        local = purchased_at.astimezone(PARIS)
        receipts[store_id] += 1
        total = 0
        for product in _basket(rng):
            quantity = rng.choices(QUANTITIES, cum_weights=QUANTITY_WEIGHTS)[0]
            total += quantity * product.price_cents
            lines.append(
                {
                    "id": len(lines) + 1,
                    "purchase_id": purchase_id,
                    "sku": product.sku,
                    "label": product.label,
                    "quantity": quantity,
                    "unit_price_cents": product.price_cents,
                }
            )
        purchases.append(
            {
                "id": purchase_id,
                "customer_id": customer_id,
                "store_id": store_id,
                "channel": channel,
                "purchased_at": purchased_at,
                "receipt_number": f"{STORES[store_id - 1].code}-{local:%Y%m%d}-{receipts[store_id]:06d}",
                "total_cents": total,
                "currency": "EUR",
            }
        )
        _add_to_total(totals, customer_id, store_id, local.year, purchased_at, total)
    return purchases, lines, list(totals.values())


def _shop_time(rng: random.Random, first_day: int, last_day: int) -> datetime:
    """A moment when the shops are open: Monday to Saturday, 9:30 to 19:30 in Paris, closed on a few holidays."""
    while True:
        day = rng.randint(first_day, last_day)
        calendar_day = date.fromordinal(day)
        if calendar_day.weekday() != 6 and (calendar_day.month, calendar_day.day) not in SHOP_CLOSED_DAYS:
            break
    return _at_local(day, rng.randint(SHOP_OPENS * 60, SHOP_CLOSES * 60 - 1))


def _web_time(rng: random.Random, first_day: int, last_day: int) -> datetime:
    return _at_local(rng.randint(first_day, last_day), rng.randint(6 * 3600, 24 * 3600 - 1))


def _basket(rng: random.Random) -> list[_Product]:
    count = rng.choices(LINE_COUNTS, cum_weights=LINE_COUNT_WEIGHTS)[0]
    # A product drawn twice is one line (with its quantity), so a basket may come out a little smaller.
    return list(dict.fromkeys(rng.choices(CATALOGUE, cum_weights=CATALOGUE_WEIGHTS, k=count)))


def _add_to_total(
    totals: dict[tuple[int, int, int], Row], customer_id: int, store_id: int, year: int, at: datetime, amount: int
) -> None:
    total = totals.get((customer_id, store_id, year))
    if total is None:
        totals[(customer_id, store_id, year)] = {
            "customer_id": customer_id,
            "store_id": store_id,
            "year": year,
            "purchase_count": 1,
            "amount_cents": amount,
            "first_purchase_at": at,
            "last_purchase_at": at,
        }
        return
    # Purchases arrive in time order, so the newest one is always the last seen.
    total["purchase_count"] += 1
    total["amount_cents"] += amount
    total["last_purchase_at"] = at


# Page views


def _page_views(
    rng: random.Random, plans: list[_Plan], browsing_since: dict[int, datetime], now: datetime
) -> tuple[list[Row], list[Row]]:
    """Page views of the customers who consent now, all after their consent, and their count per Paris day."""
    # Sessions start at least two days before `now` and last under three hours, so none runs past it.
    last_day = _local_day(now) - 2
    views: list[tuple[datetime, int, str, str]] = []
    for plan in plans:
        since = browsing_since.get(plan.customer_id)
        if since is None or not plan.page_views:
            continue
        first_day = max(_local_day(since) + 1, last_day - BROWSING_HISTORY_DAYS)
        pages = rng.choices(SITE_PAGES, cum_weights=SITE_PAGE_WEIGHTS, k=plan.page_views)
        times = _browsing_times(rng, plan.page_views, first_day, last_day)
        views += [(at, plan.customer_id, url, title) for at, (url, title) in zip(times, pages, strict=True)]
    views.sort()
    rows = [
        {"id": view_id, "customer_id": customer_id, "viewed_at": at, "url": url, "title": title}
        for view_id, (at, customer_id, url, title) in enumerate(views, start=1)
    ]
    per_day = Counter((customer_id, at.astimezone(PARIS).date()) for at, customer_id, _url, _title in views)
    days = [
        {"customer_id": customer_id, "day": day, "view_count": count} for (customer_id, day), count in per_day.items()
    ]
    return rows, days


def _browsing_times(rng: random.Random, count: int, first_day: int, last_day: int) -> list[datetime]:
    """`count` moments grouped in visits: a start in the day or evening, then a page every few seconds to minutes."""
    times: list[datetime] = []
    while len(times) < count:
        hour = rng.choices(BROWSING_HOURS, cum_weights=BROWSING_HOUR_WEIGHTS)[0]
        at = _at_local(rng.randint(first_day, last_day), hour * 3600 + rng.randint(0, 3599))
        for _ in range(min(1 + min(39, int(rng.expovariate(1 / 6))), count - len(times))):
            times.append(at)
            at += timedelta(seconds=rng.randint(12, 240))
    return times


def ensure_demo_staff(connection: Connection, *, now: datetime) -> int:
    """Add the demo staff accounts that are missing; returns how many were added."""
    table = _table(StaffUser)
    stores = _table(Store)
    added = 0
    for email, name, role, store_code, password in DEMO_STAFF:
        if connection.execute(select(table.c.id).where(table.c.email_key == email_key(email))).first():
            continue
        store_id = None
        if store_code:
            store_id = connection.execute(select(stores.c.id).where(stores.c.code == store_code)).scalar_one_or_none()
            if store_id is None:
                continue
        connection.execute(
            table.insert().values(
                email=email,
                email_key=email_key(email),
                name=name,
                role=role,
                store_id=store_id,
                password_hash=hash_password(password),
                password_must_change=False,  # documented passwords: the demo keeps them (README.md)
                failed_attempts=0,
                active=True,
                created_at=now,
            )
        )
        added += 1
    return added


# --- Writing -----------------------------------------------------------------------------------------------------


def _table(model: type[SQLModel]) -> Table:
    return model.__table__


def _write(connection: Connection, rows: _Rows) -> None:
    for model, table_rows in rows.in_insert_order():
        table = _table(model)
        for start in range(0, len(table_rows), CHUNK_SIZE):
            connection.execute(table.insert(), table_rows[start : start + CHUNK_SIZE])
    if connection.dialect.name == "postgresql":
        # Ids were given explicitly, so the sequences never moved: start them after the demo rows.
        for model in (Store, Customer, ConsentEvent, Purchase, PurchaseLine, PageView):
            name = _table(model).name
            connection.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
                )
            )


def _delete_everything(connection: Connection) -> None:
    """Empty every table but Alembic's, children first (the database may hold tables newer than these models)."""
    metadata = MetaData()
    metadata.reflect(connection)
    for table in reversed(metadata.sorted_tables):
        if table.name != "alembic_version":
            connection.execute(table.delete())


def _summary(connection: Connection, *, seconds: float, generated: bool = True) -> DemoSummary:
    def count(model: type[SQLModel]) -> int:
        return int(connection.execute(select(func.count()).select_from(_table(model))).scalar_one())

    requests = _table(PrivacyRequest)
    open_requests = connection.execute(
        select(func.count()).select_from(requests).where(requests.c.status.in_(OPEN_STATUSES))
    ).scalar_one()
    return DemoSummary(
        customers=count(Customer),
        stores=count(Store),
        purchases=count(Purchase),
        purchase_lines=count(PurchaseLine),
        page_views=count(PageView),
        consent_events=count(ConsentEvent),
        seconds=seconds,
        generated=generated,
        privacy_requests=count(PrivacyRequest),
        open_requests=int(open_requests),
    )
