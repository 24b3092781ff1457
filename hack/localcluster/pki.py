"""The cluster's credentials, made with the `openssl` CLI: a CA, the API server's serving cert,
an admin client cert (O=system:masters), the aggregation layer's front-proxy CA and client cert,
and the service-account signing key pair.

Does I/O: runs `openssl`, writes `<state>/pki`. Called by `cluster.up`. The files are created in
a temp dir that is renamed into place, so `<state>/pki` either holds all of them or does not
exist; an existing one is kept, so tokens and kubeconfigs stay valid across restarts.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from pathlib import Path

from localcluster import settings

ADMIN_USER = "corral-admin"
FRONT_PROXY_CLIENT = "front-proxy-client"
SERVER_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
_DAYS = "3650"


class PkiError(RuntimeError):
    """openssl failed; the message has its command and output."""


@dataclasses.dataclass(frozen=True)
class Files:
    """Paths of the credentials inside one pki dir."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.root / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.root / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.root / "admin.key"

    @property
    def front_proxy_ca_cert(self) -> Path:
        return self.root / "front-proxy-ca.crt"

    @property
    def front_proxy_ca_key(self) -> Path:
        return self.root / "front-proxy-ca.key"

    @property
    def front_proxy_client_cert(self) -> Path:
        return self.root / "front-proxy-client.crt"

    @property
    def front_proxy_client_key(self) -> Path:
        return self.root / "front-proxy-client.key"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.root / "sa.pub"


def files(config: settings.Settings) -> Files:
    return Files(config.pki_dir)


def ensure(config: settings.Settings) -> Files:
    """Create the credentials unless `<state>/pki` already holds them."""
    target = files(config)
    if target.root.is_dir():
        return target
    config.state_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pki-", dir=config.state_dir))
    try:
        _generate(Files(tmp), config)
        tmp.rename(target.root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _generate(out: Files, config: settings.Settings) -> None:
    out.root.chmod(0o700)
    _ca(out.ca_key, out.ca_cert, "corral-local-ca")
    sans = [
        f"IP:{settings.HOST}",
        f"IP:{config.service_ip}",
        *(f"DNS:{name}" for name in SERVER_DNS_NAMES),
    ]
    _leaf(
        (out.ca_key, out.ca_cert),
        (out.server_key, out.server_cert),
        "/CN=kube-apiserver",
        ["extendedKeyUsage = serverAuth", f"subjectAltName = {','.join(sans)}"],
    )
    _leaf(
        (out.ca_key, out.ca_cert),
        (out.admin_key, out.admin_cert),
        f"/O=system:masters/CN={ADMIN_USER}",
        ["extendedKeyUsage = clientAuth"],
    )
    # The aggregation layer's own CA: the API server proxies to extension API servers with
    # this client cert, and kube-controller-manager/-scheduler trust it for delegated authn.
    _ca(out.front_proxy_ca_key, out.front_proxy_ca_cert, "corral-front-proxy-ca")
    _leaf(
        (out.front_proxy_ca_key, out.front_proxy_ca_cert),
        (out.front_proxy_client_key, out.front_proxy_client_cert),
        f"/CN={FRONT_PROXY_CLIENT}",
        ["extendedKeyUsage = clientAuth"],
    )
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(out.sa_key)
    )
    _openssl("pkey", "-in", str(out.sa_key), "-pubout", "-out", str(out.sa_pub))


def issue(files_: Files, pair: tuple[Path, Path], subject: str, extensions: list[str]) -> None:
    """A key and a cert for `subject` signed by the cluster CA (the real node's credentials)."""
    _leaf((files_.ca_key, files_.ca_cert), pair, subject, extensions)


def authority(directory: Path, common_name: str) -> tuple[Path, Path]:
    """A new CA's (key, cert) in `directory`: for test servers that speak TLS (a store)."""
    pair = (directory / "ca.key", directory / "ca.crt")
    _ca(*pair, common_name)
    return pair


def serving(
    ca: tuple[Path, Path], directory: Path, name: str, dns: list[str], ips: list[str]
) -> tuple[Path, Path]:
    """A (key, cert) signed by `ca` (key, cert) for a server known by `dns` names and `ips`."""
    pair = (directory / f"{name}.key", directory / f"{name}.crt")
    names = ",".join([*(f"DNS:{d}" for d in dns), *(f"IP:{i}" for i in ips)])
    extensions = ["extendedKeyUsage = serverAuth", f"subjectAltName = {names}"]
    _leaf(ca, pair, f"/CN={name}", extensions)
    return pair


def _ca(key: Path, cert: Path, common_name: str) -> None:
    _ec_key(key)
    cnf = _config(
        key.with_suffix(".cnf"),
        f"/CN={common_name}",
        [
            "basicConstraints = critical,CA:TRUE",
            "keyUsage = critical,keyCertSign,cRLSign,digitalSignature",
            "subjectKeyIdentifier = hash",
        ],
    )
    _openssl(
        "req", "-x509", "-new", "-sha256", "-days", _DAYS, "-config", str(cnf),
        "-extensions", "ext", "-key", str(key), "-out", str(cert),
    )  # fmt: skip


def _leaf(
    ca: tuple[Path, Path], pair: tuple[Path, Path], subject: str, extensions: list[str]
) -> None:
    """A key and a cert for `subject` signed by `ca` (key, cert)."""
    (ca_key, ca_cert), (key, cert) = ca, pair
    _ec_key(key)
    cnf = _config(
        key.with_suffix(".cnf"),
        subject,
        [
            "basicConstraints = critical,CA:FALSE",
            "keyUsage = critical,digitalSignature,keyEncipherment",
            "authorityKeyIdentifier = keyid",
            *extensions,
        ],
    )
    csr = key.with_suffix(".csr")
    _openssl("req", "-new", "-config", str(cnf), "-key", str(key), "-out", str(csr))
    _openssl(
        "x509", "-req", "-sha256", "-days", _DAYS, "-in", str(csr), "-CA", str(ca_cert),
        "-CAkey", str(ca_key), "-CAcreateserial", "-extfile", str(cnf), "-extensions", "ext",
        "-out", str(cert),
    )  # fmt: skip


def _ec_key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )


def _config(path: Path, subject: str, extensions: list[str]) -> Path:
    """A minimal openssl config: the subject and one `[ext]` section."""
    rdns = [part.split("=", 1) for part in subject.strip("/").split("/")]
    lines = [
        "[req]",
        "prompt = no",
        "distinguished_name = dn",
        "[dn]",
        *(f"{k} = {v}" for k, v in rdns),
        "[ext]",
        *extensions,
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise PkiError("`openssl` is not on PATH: install it (Debian: apt-get install openssl)")
    result = subprocess.run(
        [openssl, *args], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
