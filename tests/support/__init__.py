"""Test helpers shared by unit, integration and end-to-end tests (builders, stream reader, …)."""
