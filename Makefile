# Conveniences around the scripts the README names (a fresh machine may not have make).
.PHONY: demo test lint typecheck messages clean

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

lint:
	bash scripts/bootstrap.sh && .venv/bin/ruff check src tests bench scripts

typecheck:
	bash scripts/bootstrap.sh && .venv/bin/mypy

## Re-extract console strings and merge them into the catalogs (then translate zh_CN).
messages:
	bash scripts/bootstrap.sh
	.venv/bin/pybabel extract -F babel.cfg -k _ -k gettext -k ngettext:1,2 -k N_ --no-location \
	  --omit-header --sort-output -o src/zhixing/locale/messages.pot .
	.venv/bin/pybabel update -i src/zhixing/locale/messages.pot -d src/zhixing/locale \
	  --omit-header --no-fuzzy-matching --ignore-obsolete

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache build zhixing-demo.db*
