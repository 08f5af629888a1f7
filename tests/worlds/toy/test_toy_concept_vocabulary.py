"""The toy world's concept vocabulary joins the names dissection, LaViSE and tuning give its units."""

import pandas as pd

import linkviz
from linkviz.quantify.method_agreement import method_agreement


def test_dissection_labels_lavise_words_and_tuned_parts_of_the_toy_world_meet_on_its_concepts():
    vocabulary = linkviz.load_toy_world(device="cpu").concept_vocabulary()
    dissection = pd.DataFrame({"unit": [0, 1, 2, 3], "label": ["cap", "mushroom", "blue-s", "red-c"],
                               "iou": [0.2, 0.2, 0.2, 0.2]})
    lavise = pd.DataFrame({"unit": [0, 1, 2, 3], "rank": [0, 0, 0, 0], "word": ["cap", "umbrella", "sky", "red"]})
    tuning = pd.DataFrame({"unit": [0, 1, 2, 3], "label": ["cap", "stem", "background", "crown"],
                           "metric": ["area"] * 4})
    table = method_agreement(vocabulary=vocabulary, dissection=dissection, lavise=lavise, tuning=tuning).table
    levels = dict(zip(table["unit"], table["agreement"]))
    # 0: three names of the cap; 1: the mushroom object holds the stem ("umbrella" is no toy concept);
    # 2: the scene label is the background colour ("sky" is no toy word); 3: red is not the crown
    assert levels == {0: "all agree", 1: "two agree", 2: "two agree", 3: "two agree"}
    assert table.set_index("unit").loc[3, "flagged"]
