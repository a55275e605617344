"""A faithful stand-in for the WAHA HTTP API (WhatsApp HTTP API), for local runs and tests."""

from .app import Emulator, create_app
from .config import EmulatorConfig

__all__ = ["Emulator", "EmulatorConfig", "create_app"]
