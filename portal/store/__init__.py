"""Store tablet mode (/staff/tablet): staff help a customer in the shop on a shared device."""
