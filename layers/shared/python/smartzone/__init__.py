"""SmartZone shared code (the `shared` Lambda layer): domain logic, repositories, settings."""
