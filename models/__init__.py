"""The domain of Mandate, installed as mandate.models: the tortoise models and the rules they carry."""
