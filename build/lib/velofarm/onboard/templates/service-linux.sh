# A systemd system unit: it starts at boot without anyone logged in, restarts the worker if it
# dies, and runs it as the user who ran this script (whose ~/.cargo holds the Rust toolchain).
UNIT="velofarm-worker-$NAME.service"
SERVICE_FILE="$DIR/$UNIT"
cat > "$SERVICE_FILE" <<UNIT_EOF
[Unit]
Description=velofarm worker $NAME (Buildbot worker for $MASTER)
Documentation=https://docs.buildbot.net/4.3.0/manual/installation/worker.html
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=$RUN_AS
WorkingDirectory=$WORKER
# A service reads no shell profile: name the toolchain's folders here.
Environment=HOME=$HOME
Environment=PATH=$HOME/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart=$VENV/bin/buildbot-worker start --nodaemon $WORKER
Restart=always
RestartSec=10
# Stopping the worker also ends the build processes it started.
KillMode=control-group
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
UNIT_EOF
step "wrote the systemd unit $SERVICE_FILE"
if [ "$SERVICE" = 1 ]; then
    step "installing /etc/systemd/system/$UNIT and starting it${SUDO:+ (with sudo)}"
    $SUDO install -m 644 "$SERVICE_FILE" "/etc/systemd/system/$UNIT"
    $SUDO systemctl daemon-reload
    $SUDO systemctl enable "$UNIT"
    # restart, not start: a second run (a new password) must reach the running worker.
    $SUDO systemctl restart "$UNIT"
fi
