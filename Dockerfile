# One image for web (gunicorn), worker, beat and the one-shot migrate service.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system regulars \
 && useradd --system --gid regulars --home-dir /app --no-create-home regulars

# Dependencies first, from pyproject.toml alone, so a code change does not
# reinstall them. The project runs from /app; it is not installed as a package.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY . .

# Static files and translations are baked into the image (web, worker and beat
# share it). These settings exist only for the build steps; the containers get
# their own from docker-compose.yml and .env.
RUN DEBUG=false SECRET_KEY=build-only-not-used-at-runtime ALLOWED_HOSTS=build \
    sh -c "python manage.py collectstatic --no-input -v0 \
        && python manage.py compile_translations" \
 && mkdir -p /app/media \
 && chown regulars:regulars /app/media

USER regulars
EXPOSE 8000

CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", \
     "--access-logfile", "-", "--timeout", "60"]
