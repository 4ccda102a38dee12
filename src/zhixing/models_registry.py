"""Imports every domain's tables so Alembic and tests see the whole schema."""

from zhixing.analytics import models as analytics_models
from zhixing.cases import models as cases_models
from zhixing.command import models as command_models
from zhixing.core import models as core_models
from zhixing.core.db import Base
from zhixing.courts import models as courts_models
from zhixing.credit import models as credit_models
from zhixing.field import models as field_models
from zhixing.linkage import models as linkage_models

__all__ = ["Base", "analytics_models", "cases_models", "command_models", "core_models",
           "courts_models", "credit_models", "field_models", "linkage_models"]
