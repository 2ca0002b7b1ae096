"""Online side: the FastAPI app that answers POST /recommend from one artifact version."""
