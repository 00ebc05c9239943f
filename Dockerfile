FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CONCORD_VAR_DIR=/var/lib/concord
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY labeling ./labeling
COPY analysis ./analysis
COPY templates ./templates
COPY manage.py ./
RUN pip install --no-cache-dir . \
    && SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && useradd --system --home /app concord \
    && mkdir -p /var/lib/concord && chown -R concord /var/lib/concord
USER concord
EXPOSE 8000
CMD ["gunicorn", "--config", "config/gunicorn.py", "--access-logfile", "-"]
