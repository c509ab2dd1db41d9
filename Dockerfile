# The image Railway builds (railway.json) and any container host runs: Python 3.11 like
# the tests, the dependencies of requirements.lock (scripts/lock) with their hashes, quartchat
# installed non-editable by scripts/docker-install (tests/test_install.py runs these
# same steps), served by a user without privileges.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/quartchat \
    PATH=/opt/quartchat/bin:$PATH

WORKDIR /src
# Dependencies first, in their own layer: a code change does not reinstall them.
COPY requirements.lock ./
COPY scripts/docker-install scripts/
RUN scripts/docker-install dependencies
COPY . .
RUN scripts/docker-install project

RUN useradd --create-home --uid 10001 quartchat && install -d -o quartchat /data
USER quartchat
# The default SQLite database lands here; production sets DATABASE_URL to PostgreSQL.
WORKDIR /data

# `quartchat serve` listens on $PORT (Railway sets it; 8000 otherwise) on [::].
ENV PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["quartchat", "health"]
CMD ["quartchat", "serve"]
