"""Imports every domain's tables so Alembic and tests see the whole schema."""

from zhixing.core import models as core_models
from zhixing.core.db import Base
from zhixing.courts import models as courts_models

__all__ = ["Base", "core_models", "courts_models"]
