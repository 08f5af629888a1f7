"""Plain-Python state behind every widget: the user's choices in, a typed :class:`GridView` result out.

Nothing here imports ipywidgets: each widget in :mod:`linkviz.widgets` only binds its controls to one of these
classes and draws what it returns, and the same result makes a matplotlib figure and a tidy table.
"""

from linkviz.controllers.counterfactual_exploring import CounterfactualExploring, CounterfactualView
from linkviz.controllers.dissection_browsing import DissectionBrowsing, DissectionPage, filter_units
from linkviz.controllers.exploring import DissectionData, ExploreData, PopulationData, Unavailable
from linkviz.controllers.filter_explaining import ExplanationView, FilterExplaining, heat_overlay, unit_maps
from linkviz.controllers.label_painting import LabelPainting, PaintingView, parse_ids
from linkviz.controllers.link_exploring import LinkExploring, LinkPageView
from linkviz.controllers.population import ConceptRanking, PopulationAnalysis, PopulationView
from linkviz.controllers.selection import Selection
from linkviz.controllers.unit_describing import UnitCardView, UnitDescribing, unit_frame
from linkviz.controllers.unit_tuning import PartsFunction, TuningView, UnitTuning, parse_seeds
from linkviz.controllers.view import GridView, plain_text
from linkviz.controllers.world_browsing import WorldBrowsing, WorldSamplesView

__all__ = [
    "ConceptRanking",
    "CounterfactualExploring",
    "CounterfactualView",
    "DissectionBrowsing",
    "DissectionData",
    "DissectionPage",
    "ExplanationView",
    "ExploreData",
    "FilterExplaining",
    "GridView",
    "LabelPainting",
    "LinkExploring",
    "LinkPageView",
    "PaintingView",
    "PartsFunction",
    "PopulationAnalysis",
    "PopulationData",
    "PopulationView",
    "Selection",
    "TuningView",
    "Unavailable",
    "UnitCardView",
    "UnitDescribing",
    "UnitTuning",
    "WorldBrowsing",
    "WorldSamplesView",
    "filter_units",
    "heat_overlay",
    "parse_ids",
    "parse_seeds",
    "plain_text",
    "unit_frame",
    "unit_maps",
]
