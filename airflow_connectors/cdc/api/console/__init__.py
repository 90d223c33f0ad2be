"""The service's web console (``/console/``): server-rendered pages over the state store, signed-in with the API
token. Templates and static files ship in this package; nothing is fetched from elsewhere."""
