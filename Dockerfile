# The panorama-kpi tool image: `docker run -v $PWD:/work panorama-kpi extract-and-load --all`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY panorama.py settings.template.yaml ./
COPY panorama_kpi ./panorama_kpi
COPY sql ./sql

RUN useradd --create-home --uid 10001 panorama
USER panorama
# Settings, lake and relative paths resolve against the mounted working directory.
WORKDIR /work
ENTRYPOINT ["python", "/app/panorama.py"]
CMD ["--help"]
