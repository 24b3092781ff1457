"""Typed FastAPI dependencies: the one kube client, the settings and the page templates.

Created once by `app.create_app` (the client in its lifespan) and read from `app.state`; route
functions declare `kube: deps.KubeDep` and never build clients of their own. No I/O.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates

from corral.console import kube as kube_mod
from corral.console import settings as settings_mod


def get_kube(request: Request) -> kube_mod.Kube:
    client: kube_mod.Kube = request.app.state.kube
    return client


def get_settings(request: Request) -> settings_mod.Settings:
    settings: settings_mod.Settings = request.app.state.settings
    return settings


def get_templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


KubeDep = Annotated[kube_mod.Kube, Depends(get_kube)]
SettingsDep = Annotated[settings_mod.Settings, Depends(get_settings)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
