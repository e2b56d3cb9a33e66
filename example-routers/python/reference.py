"""The dbroute reference policy, in Python (the same decisions as
example-routers/reference, the Rust one; the cases are in
example-routers/reference-cases.json):

- a `tenant` hint (a string) that the configuration's tenant map
  ({"tenants": {"acme": "tenant_acme"}}) maps to a connection sends reads
  and writes there; an unmapped tenant changes nothing;
- otherwise reads go to `replica`, writes to `default`, except the `Event`
  model, which reads and writes on `analytics`;
- writes to a model tagged `readonly` are refused, tenant or not, with the
  message `writes to read-only model <Name> are forbidden`;
- allow_migrate: `Event` only on `analytics` (true there, false
  elsewhere); any other model false on `analytics`, no opinion elsewhere
  (an app asked about without a model counts as another model).

Deterministic: the host may cache its answers. Build: ./build.sh OUT_DIR
"""

import dbroute_router
from dbroute_router import Refuse


@dbroute_router.export
class Router:
    deterministic = True

    tenants = {}

    def setup(self, config, connections):
        tenants = config.get("tenants") if isinstance(config, dict) else None
        if tenants is not None:
            if not isinstance(tenants, dict) or not all(
                isinstance(db, str) for db in tenants.values()
            ):
                raise Refuse("config.tenants must be an object whose values are strings")
            self.tenants = tenants
        dbroute_router.log("debug", "reference router (Python) ready")

    def tenant_db(self, hints):
        """The connection the operation's tenant maps to, if any."""
        tenant = hints.get("tenant")
        return self.tenants.get(tenant) if isinstance(tenant, str) else None

    def db_for_read(self, model, **hints):
        db = self.tenant_db(hints)
        if db is not None:
            return db
        return "analytics" if model.name == "Event" else "replica"

    def db_for_write(self, model, **hints):
        if "readonly" in model.tags:
            raise Refuse(f"writes to read-only model {model.name} are forbidden")
        db = self.tenant_db(hints)
        if db is not None:
            return db
        return "analytics" if model.name == "Event" else "default"

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if model_name == "Event":
            return db == "analytics"
        return False if db == "analytics" else None
