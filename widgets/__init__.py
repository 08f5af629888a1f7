"""The Jupyter layer of linkviz (importable as ``linkviz.widgets``): thin widgets over library functions."""

from linkviz.widgets.app import ExploreApp, explore
from linkviz.widgets.counterfactual_explorer import CounterfactualExplorer
from linkviz.widgets.dissection_browser import DissectionBrowser
from linkviz.widgets.filter_explainer import FilterExplainer
from linkviz.widgets.gallery import class_gallery
from linkviz.widgets.label_painter import LabelPainter
from linkviz.widgets.latest_wins import LatestWinsWorker
from linkviz.widgets.link_explorer import LinkExplorer
from linkviz.widgets.population_dashboard import PopulationDashboard
from linkviz.widgets.unit_card import UnitCard
from linkviz.widgets.unit_tuner import UnitTuner
from linkviz.widgets.world_browser import WorldBrowser

__all__ = ["CounterfactualExplorer", "DissectionBrowser", "ExploreApp", "FilterExplainer", "LabelPainter",
           "LatestWinsWorker", "LinkExplorer", "PopulationDashboard", "UnitCard", "UnitTuner", "WorldBrowser",
           "class_gallery", "explore"]
