# Caravan: `make run` starts everything, `make test` runs every test. See README.md.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test venv browser pgbouncer pdf messages bench bench-goals clean-var

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	$(BIN)/python infra/paths.py
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

run: venv pdf
	$(BIN)/python -m infra.devenv run

# Browser tests drive Debian's Chromium; install it when missing and we may (root, apt).
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null) \
	  || echo "Chromium not installed (apt-get install chromium): browser tests will be skipped."; }

# Proposal and itinerary PDFs (WeasyPrint, crm.proposals.pdf) need Pango and a Chinese font; install them when
# missing and we may (root, apt). Without them the rest of the product runs and the PDF links answer 503.
pdf:
	@{ ldconfig -p | grep -q libpangoft2-1.0 && fc-list 2>/dev/null | grep -qi "CJK"; } || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk >/dev/null) \
	  || echo "Pango or a Chinese font is missing (apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk): PDFs will not render."; }

# The PgBouncer tests (tests/test_pgbouncer.py, and test_isolation.py run a second time through it)
# start Debian's pgbouncer; install it when missing and we may (root, apt).
pgbouncer:
	@test -x /usr/sbin/pgbouncer || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null) \
	  || echo "PgBouncer not installed (apt-get install pgbouncer): its tests will be skipped."; }

test: venv browser pgbouncer pdf
	$(BIN)/python -m infra.devenv test $(ARGS)

# Extracting and compiling strings needs settings, not secrets or servers.
messages: venv
	cd $(CURDIR) && export SECRET_KEY=makemessages-only DATABASE_URL=postgres://unused/unused REDIS_URL=redis://unused:6379/0 DOCUMENT_HASH_KEY=unused DOCUMENT_KEYS=$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') && $(BIN)/python manage.py makemessages -l zh_Hans -l en --ignore '.venv/*' --ignore 'var/*' && \
	$(BIN)/python manage.py compilemessages --ignore '.venv/*'

bench: venv
	$(BIN)/python -m infra.devenv bench

# Only issue 22's figures, each next to its anchor, at the sizes it names (docs/performance.md, first table):
# the six commands at the top of that file, in its order. Makes its agencies on the first run (1,000,000 customers
# for search), so the first run takes longer than the next ones.
bench-goals: venv
	$(BIN)/python -m infra.devenv bench request_cost
	$(BIN)/python -m infra.devenv bench intake
	BENCH_PARTS=search BENCH_SEARCH_SIZES=1000,10000,100000,1000000 $(BIN)/python -m infra.devenv bench customers
	BENCH_PARTS=import $(BIN)/python -m infra.devenv bench customers
	$(BIN)/python -m infra.devenv bench request_cpu
	BENCH_SEGMENT_SIZES=100000 $(BIN)/python -m infra.devenv bench segments

clean-var:
	rm -rf var
