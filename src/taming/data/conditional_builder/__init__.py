"""Scene layouts -> token sequences for the scene-image transformers.

`objects_bbox.ObjectsBoundingBoxConditionalBuilder` (category + box corners per object) and
`objects_center_points.ObjectsCenterPointsConditionalBuilder` (category + center point);
`utils` holds the box geometry and plotting helpers.
"""
