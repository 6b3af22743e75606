"""Per-registry mirrors and settings, in k3s' `registries.yaml` format:

    mirrors:
      docker.io:
        endpoint: ["https://mirror.example:5000", "http://127.0.0.1:5000"]
    configs:
      mirror.example:5000:
        auth: {username: u, password: p}       # or auth: <base64 user:pass>, identity_token
        tls: {ca_file: /path/ca.pem, cert_file: …, key_file: …, insecure_skip_verify: false}

A registry's endpoints are its mirrors (or those of the `*` mirror), then the registry itself, as k3s and
containerd try them. Plain http is used only for an endpoint written with `http://` or a loopback host.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pyk8s.kubelet.images.reference import DOCKER_HUB


@dataclass(frozen=True)
class Endpoint:
    host: str  # host[:port]: what `configs` is keyed by
    urls: tuple[str, ...]  # base URLs to try in order: https first, http for loopback or http:// endpoints
    path: str = ""  # a path prefix before /v2/ (some mirrors serve under one)


@dataclass
class HostConfig:
    username: str = ""
    password: str = ""
    auth: str = ""
    identity_token: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure_skip_verify: bool = False

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not (self.ca_file or self.cert_file or self.insecure_skip_verify):
            return True
        ctx = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file or None)
        if self.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


@dataclass
class RegistriesConfig:
    mirrors: dict[str, list[str]] = field(default_factory=dict)
    configs: dict[str, HostConfig] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> RegistriesConfig:
        if path is None or not Path(path).exists():
            return cls()
        with open(path) as f:
            doc: Any = yaml.safe_load(f) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a mapping with mirrors and configs")
        mirrors = {str(k): [str(e) for e in (v or {}).get("endpoint") or []]
                   for k, v in (doc.get("mirrors") or {}).items()}
        configs = {}
        for host, c in (doc.get("configs") or {}).items():
            c = c or {}
            auth, tls = c.get("auth") or {}, c.get("tls") or {}
            configs[str(host)] = HostConfig(
                username=str(auth.get("username") or ""), password=str(auth.get("password") or ""),
                auth=str(auth.get("auth") or ""), identity_token=str(auth.get("identity_token") or ""),
                ca_file=str(tls.get("ca_file") or ""), cert_file=str(tls.get("cert_file") or ""),
                key_file=str(tls.get("key_file") or ""),
                insecure_skip_verify=bool(tls.get("insecure_skip_verify")))
        return cls(mirrors, configs)

    def endpoints(self, registry: str) -> list[Endpoint]:
        found = [_endpoint(url) for url in self.mirrors.get(registry, self.mirrors.get("*", []))]
        default = "https://registry-1.docker.io" if registry == DOCKER_HUB else registry
        ep = _endpoint(default)
        if ep not in found:
            found.append(ep)
        return found

    def host_config(self, host: str) -> HostConfig:
        return self.configs.get(host) or HostConfig()


def is_loopback(host: str) -> bool:
    name = urlsplit(f"//{host}").hostname or host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _endpoint(url: str) -> Endpoint:
    if "://" not in url:
        host = url.rstrip("/")
        urls = (f"https://{host}", f"http://{host}") if is_loopback(host) else (f"https://{host}",)
        return Endpoint(host, urls)
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v2")
    return Endpoint(parts.netloc, (f"{parts.scheme}://{parts.netloc}",), path)
