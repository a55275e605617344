"""docs/operations.md documents every setting every service reads."""

import re

from gateway.config import Settings as GatewaySettings
from persister.config import Settings as PersisterSettings
from session_orchestrator.config import Settings as OrchestratorSettings
from webhook_dispatcher.config import Settings as DispatcherSettings
from webhook_ingest.config import Settings as IngestSettings

from .conftest import ROOT

DOC = ROOT / "docs" / "operations.md"


def test_every_setting_is_documented():
    text = DOC.read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, re.M))
    for settings in (GatewaySettings, OrchestratorSettings, IngestSettings, PersisterSettings, DispatcherSettings):
        missing = {name.upper() for name in settings.model_fields} - documented
        assert not missing, f"{settings.__module__}: document {sorted(missing)} in docs/operations.md (Settings)"
