"""The paper's analyses of the learned modulation parameters (section 4.2, Figs. 5 to 7).

* Fig. 5: the visual modulator's output for many objects, embedded in 2-D by
  multi-dimensional scaling and coloured by the objects' classes: similar
  objects should get similar modulation parameters.
* Fig. 6: for each modulated layer, a histogram over its channels of the
  standard deviation of the visual modulator's scale gamma_c across objects:
  how much each layer's scales change with the visual guide.
* Fig. 7: for each modulated layer, a histogram of the magnitudes of the
  spatial modulator's scales (the 1x1 kernel that weighs the spatial guide
  into each channel's bias): how strongly the spatial prior enters each layer.

Objects come from three sources, each a list of `AnalysisObject` (a class
label and a way to load the frame and mask its visual guide is made from):
`coco_objects` (MS-COCO, the paper's choice, class = COCO category),
`davis_objects` (first-frame objects of a DAVIS split) and
`synthetic_objects` (the embedded synthetic set, `osmn_tf.data.synthetic`).
`encode_objects` runs the visual modulator on them; `plot_*` draw the figures
with matplotlib's object-oriented API (no pyplot: no GUI backend, no global
state) and `save_figure` writes a PNG atomically.

The package keeps apart loading objects (`objects`), computing what the
figures show (`encoding`: the visual modulator's output, Fig. 6's spreads,
the MDS embedding) and drawing (`figures`).
"""
from osmn_tf.modulation_analysis.encoding import (
    THUMBNAIL_SIZE, EncodedObjects, encode_objects, gamma_std_per_layer, guide_thumbnail, mds_embedding)
from osmn_tf.modulation_analysis.figures import (
    FIGURE_FILES, NEAR_ZERO_FRACTION, class_colours, plot_spatial_scale, plot_visual_gamma_std, plot_visual_mds,
    save_figure, write_figures)
from osmn_tf.modulation_analysis.objects import (
    DAVIS_SEMANTICS_FILE, PAPER_COCO_CATEGORIES, SYNTHETIC_CLASSES, AnalysisObject, balanced_selection,
    coco_objects, davis_objects, synthetic_objects)

__all__ = [
    "DAVIS_SEMANTICS_FILE", "FIGURE_FILES", "NEAR_ZERO_FRACTION", "PAPER_COCO_CATEGORIES", "SYNTHETIC_CLASSES",
    "THUMBNAIL_SIZE", "AnalysisObject", "EncodedObjects", "balanced_selection", "class_colours", "coco_objects",
    "davis_objects", "encode_objects", "gamma_std_per_layer", "guide_thumbnail", "mds_embedding",
    "plot_spatial_scale", "plot_visual_gamma_std", "plot_visual_mds", "save_figure", "synthetic_objects",
    "write_figures",
]
