"""The upload receiver in the master (a service) and the step that sends an archive through it.

The receiver itself (velofarm/receiver.py, velofarm/incoming.py) knows nothing of Buildbot; this
is the thin layer: a BuildbotService that runs it on the master's upload port, and UploadArtifact,
which grants a per-build token, has the worker run transfer.py, stores the archive and revokes
the token.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, ClassVar

from buildbot.process import buildstep, logobserver
from buildbot.process.results import FAILURE, SUCCESS
from buildbot.util.service import BuildbotService
from twisted.internet import defer, threads
from twisted.python import log

from velofarm.artifacts.incoming import Receipt, UploadGrants
from velofarm.artifacts.receiver import PATH_PREFIX, ReceiverServer, start_receiver, stop_receiver, tls_context
from velofarm.artifacts.retention import remove_leftovers
from velofarm.artifacts.store import BuildIdentity, commit_incoming, incoming_dir, write_build_image
from velofarm.buildmaster.toolsteps import summary_from_output
from velofarm.errors import VelofarmError
from velofarm.onboard.workertac import CA_DIR
from velofarm.release.authenticode import Authenticode, sign_archive
from velofarm.spec.farm import Spec

SERVICE_NAME = "velofarm-uploads"
WORKER_CA = f"{CA_DIR}/ca.pem"  # in the worker's folder: the CA that signed the master's certificate


class UploadReceiver(BuildbotService):
    """Runs the receiver in the master; `grants` holds the live tokens across reconfigs."""

    name = SERVICE_NAME

    def checkConfig(self, port: int = 0, interface: str = "127.0.0.1", public_url: str = "",  # type: ignore[override]
                    public_host: str = "", artifacts_root: str = "", tls_cert: str = "", tls_key: str = "") -> None:
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise VelofarmError(f"upload receiver: port must be 0 (any free port) to 65535, got {port!r}")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.grants = UploadGrants()
        self.server: ReceiverServer | None = None
        self.public_url, self.public_host = "", ""
        super().__init__(*args, **kwargs)

    def reconfigService(self, port: int = 0, interface: str = "127.0.0.1", public_url: str = "",  # type: ignore[override]
                        public_host: str = "", artifacts_root: str = "", tls_cert: str = "", tls_key: str = "") -> Any:
        self.public_url, self.public_host = public_url, public_host
        tls = (tls_cert, tls_key) if tls_cert else None
        server = self.server
        if server is None and artifacts_root:
            # The master (re)starts: grants live in memory, so no upload cut off by the restart can
            # resume; its partial files would stay forever. (A reconfig keeps uploads running.)
            for path in remove_leftovers(Path(artifacts_root)):
                log.msg(f"velofarm uploads: removed {path}, left by an upload the last master run did not finish")
        if (server is not None and server.server_name == interface and port in (0, server.server_port)
                and getattr(self, "tls_files", None) == tls):
            return defer.succeed(None)  # same address (0 = any free port: keep the one we have)
        if self.server is not None:
            stop_receiver(self.server)
        try:
            context = tls_context(*tls) if tls else None
            self.server = start_receiver(interface, port, self.grants, log.msg, context)
            self.tls_files = tls
        except OSError as exc:
            raise VelofarmError(f"upload receiver: cannot listen on {interface}:{port} ({exc.strerror}); "
                                "free that port or set another [master] upload_port") from None
        log.msg(f"velofarm uploads: receiving on {interface}:{self.server.server_port}")
        return defer.succeed(None)

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        if self.server is not None:
            server, self.server = self.server, None
            yield threads.deferToThread(stop_receiver, server)
        yield super().stopService()

    def url_for(self, worker_host: str | None) -> str:
        """The URL a worker uses: the configured one, else the master's public host, else the
        address the worker's PB connection reached (it can reach that one)."""
        if self.public_url:
            return self.public_url.rstrip("/") + "/"
        assert self.server is not None, "the upload receiver is not running"
        bound = self.server.server_name
        public = self.public_host if self.public_host not in ("", "127.0.0.1", "localhost", "::1") else ""
        host = bound if bound not in ("", "0.0.0.0", "::") else (public or worker_host or "127.0.0.1")
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if self.server.tls is not None else "http"
        return f"{scheme}://{host}:{self.server.server_port}{PATH_PREFIX}"


def upload_service(spec: Spec, artifacts_root: Path | None = None,
                   tls: tuple[Path, Path] | None = None) -> UploadReceiver:
    """The receiver for c['services'], on the PB port's interface: workers reach it where they reach PB.
    With `tls` (the master's certificate and key, pb_tls = true) it serves https."""
    interface = spec.master.pb_bind
    return UploadReceiver(port=spec.master.upload_port, interface=interface, public_url=spec.master.upload_url,
                          public_host=spec.master.public_host,
                          artifacts_root=str(artifacts_root) if artifacts_root else "",
                          tls_cert=str(tls[0]) if tls else "", tls_key=str(tls[1]) if tls else "")


def find_receiver(master: Any) -> UploadReceiver | None:
    service = master.service_manager.namedServices.get(SERVICE_NAME)
    return service if isinstance(service, UploadReceiver) and service.server is not None else None


def worker_host(step: buildstep.BuildStep) -> str | None:
    """The master address this build's worker connected to over PB (it can reach us there)."""
    try:
        return str(step.build.workerforbuilder.worker.conn.mind.broker.transport.getHost().host)
    except AttributeError:
        return None


class UploadArtifact(buildstep.ShellMixin, buildstep.BuildStep):
    """Grant a token, have the worker hash and PUT the archive (transfer.py, one process), store it,
    revoke the token.

    The token reaches the worker on the command's stdin: never on a command line, in the
    environment, in a file left behind, or in a step log. The archive is stored under this build's
    id with a build.json the master writes from its own records (store.py); with `signer`, its
    .exe files are Authenticode-signed here, on the master, before it is stored.
    """

    renderables: ClassVar[list[str]] = ["archive", "source_dir", "python"]

    def __init__(self, artifacts_root: str, platform: str, archive: Any, source_dir: Any = "../dist",
                 python: Any = "python3", bundle: str = "../tools/velofarm-tools.pyz", signer: Authenticode | None = None,
                 max_bytes: int = 0, **kwargs: Any) -> None:
        self.artifacts_root, self.platform, self.archive = artifacts_root, platform, archive
        self.signer = signer
        self.max_bytes = max_bytes  # the grant's size limit (spec.job.upload_limit_bytes); 0: the receiver's
        self.source_dir, self.python, self.bundle = source_dir, python, bundle
        kwargs.setdefault("logEnviron", False)  # the worker's environment is nobody's business
        kwargs = self.setupShellMixin(kwargs, prohibitArgs=["command", "initialStdin"])
        super().__init__(**kwargs)
        self.output = logobserver.BufferLogObserver(wantStdout=False, wantStderr=True)
        self.addLogObserver("stdio", self.output)  # a failed upload's summary names transfer.py's cause

    @defer.inlineCallbacks
    def run(self) -> Any:
        receiver = find_receiver(self.master)
        if receiver is None:
            yield self.addCompleteLog("error", f"the upload receiver ({SERVICE_NAME}) is not running: add "
                                               "uploads.upload_service(spec) to c['services']\n")
            return FAILURE
        tag, root = str(self.getProperty("tag")), Path(self.artifacts_root)
        try:
            folder = incoming_dir(root, tag, self.platform, self.build.buildid)
            limit = {"max_bytes": self.max_bytes} if self.max_bytes else {}
            token = receiver.grants.grant(folder, [self.archive], **limit)
        except VelofarmError as exc:
            yield self.addCompleteLog("error", f"{exc}\n")
            return FAILURE
        try:
            # A worker that reaches the master through a tunnel or proxy sets velofarm_upload_url.
            url = self.getProperty("velofarm_upload_url") or receiver.url_for(worker_host(self))
            cmd = yield self.makeRemoteShellCommand(command=self._command(str(url)),
                                                    initialStdin=token + "\n")
            started = time.monotonic()
            yield self.runCommand(cmd)
            seconds = time.monotonic() - started
        finally:
            receipt = receiver.grants.revoke(token).get(self.archive)
        if cmd.didFail() or receipt is None:
            yield threads.deferToThread(shutil.rmtree, folder, True)
            cause = summary_from_output("", self.output.getStderr())
            self.descriptionDone = [f"upload failed: {cause}" if cause else "upload failed"]
            return cmd.results() if cmd.didFail() else FAILURE
        return (yield self._store(tag, receipt, seconds))

    def _command(self, url: str) -> list[str]:
        archive = f"{self.source_dir}/{self.archive}"
        # An https receiver's certificate is checked against the farm's CA, which the bootstrap
        # put in the worker's folder (WORKER_CA); a custom upload_url may rely on system CAs.
        ca = (["--ca-file", f"{self.getProperty('builddir')}/../{WORKER_CA}"]
              if url.startswith("https://") and not self.getProperty("velofarm_upload_url") else [])
        # No ARCHIVE.sha256: transfer.py hashes the archive itself and sends the hash with the PUT
        # (Repr-Digest); the receiver hashes what arrives and refuses a mismatch.
        return [self.python, self.bundle, "transfer", "upload", "--url", url, "--token-file", "-", *ca, archive]

    @defer.inlineCallbacks
    def _store(self, tag: str, receipt: Receipt, seconds: float) -> Any:
        log_ = yield self.getLog("stdio")
        try:
            record = self._identity(tag)
            sign = None
            if self.signer is not None:
                signer, epoch = self.signer, int(self.getProperty("source_date_epoch"))
                sign = lambda path: sign_archive(signer, path, epoch)  # noqa: E731
            final = yield threads.deferToThread(commit_incoming, Path(self.artifacts_root), record,
                                                receipt.sha256, sign)
        except VelofarmError as exc:
            yield log_.addStderr(f"error: {exc}\n")
            self.descriptionDone = ["artifact rejected"]
            return FAILURE
        if self.signer is not None:
            yield log_.addStdout(f"signed the .exe files with Authenticode (certificate {self.signer.cert.name})\n")
        yield log_.addStdout(f"stored {final} as {record.describe()} of commit {record.commit}\n")
        self.setProperty("artifact", str(final), "UploadArtifact")
        if self.getProperty("builder_image_digest"):
            # Recorded beside the archive for release.json (and provenance): which image built it.
            yield threads.deferToThread(write_build_image, final.parent, self.getProperty("builder_image"),
                                        self.getProperty("builder_image_digest"))
            yield log_.addStdout(f"built in image {self.getProperty('builder_image_digest')}\n")
        # The digest is the one the worker sent and the receiver checked (before any signing).
        self.descriptionDone = [f"stored ({receipt.size / 2**20:.1f} MiB in {seconds:.1f} s, sha256 {receipt.sha256[:8]}… checked)"]
        return SUCCESS

    def _identity(self, tag: str) -> BuildIdentity:
        """Which build this is, from the master's records: the commit is the one the coordinator
        resolved (the sourcestamp), and the worker's checkout must have reported that same one."""
        source = self.build.getSourceStamp("")
        commit = str(source.revision or "") if source else ""
        checked_out = str(self.getProperty("got_revision") or "")
        if commit and checked_out and checked_out != commit:
            raise VelofarmError(f"tag {tag}: platform {self.platform}: the worker checked out {checked_out}, not the "
                                f"release's commit {commit}; rebuild the release")
        return BuildIdentity(tag=tag, platform=self.platform, build_id=int(self.build.buildid),
                           build_number=int(self.build.number), builder=str(self.build.builder.name),
                           worker=str(self.build.workerforbuilder.worker.workername), commit=commit,
                           archive=str(self.archive))
