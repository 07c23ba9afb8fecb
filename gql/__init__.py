"""The GraphQL surface of Mandate, installed as mandate.gql: one module per area, the permission
classes, the schema and the ASGI app."""
