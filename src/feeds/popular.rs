//! Popular-package lists per ecosystem, for the typosquat check (being written).
