"""The item index: build it offline from the item tower, search it online."""
