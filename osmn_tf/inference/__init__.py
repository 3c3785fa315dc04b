"""The video loop: the segmenter, object tracking, jobs over datasets, the dense CRF, overlays."""
