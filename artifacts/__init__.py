"""What the offline job hands to the online service.

The artifact layout and manifest, the feature spec, the user feature store and item
catalogue, and loaders for the exported towers and heads. Training writes these; the index
job and the service only read them. Nothing here imports training code.
"""
