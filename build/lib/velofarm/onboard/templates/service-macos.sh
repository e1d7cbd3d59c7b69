# A launchd daemon (not an agent): a build Mac is usually headless, and a daemon starts at boot
# without anyone logged in. UserName runs it as the user who ran this script (whose ~/.cargo
# holds the Rust toolchain); KeepAlive restarts it if it dies.
LABEL="net.velofarm.worker.$NAME"
SERVICE_FILE="$DIR/$LABEL.plist"
cat > "$SERVICE_FILE" <<PLIST_EOF
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>Label</key>
    <string>$LABEL</string>
    <key>UserName</key>
    <string>$RUN_AS</string>
    <key>ProgramArguments</key>
    <array>
        <string>$VENV/bin/buildbot-worker</string>
        <string>start</string>
        <string>--nodaemon</string>
        <string>$WORKER</string>
    </array>
    <key>WorkingDirectory</key>
    <string>$WORKER</string>
    <key>EnvironmentVariables</key>
    <dict>
        <key>HOME</key>
        <string>$HOME</string>
        <key>PATH</key>
        <string>$HOME/.cargo/bin:/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin</string>
    </dict>
    <key>RunAtLoad</key>
    <true/>
    <key>KeepAlive</key>
    <true/>
    <key>ThrottleInterval</key>
    <integer>10</integer>
    <key>StandardOutPath</key>
    <string>$WORKER/launchd.log</string>
    <key>StandardErrorPath</key>
    <string>$WORKER/launchd.log</string>
</dict>
</plist>
PLIST_EOF
step "wrote the launchd property list $SERVICE_FILE"
if [ "$SERVICE" = 1 ]; then
    step "installing /Library/LaunchDaemons/$LABEL.plist and starting it${SUDO:+ (with sudo)}"
    # launchd loads a daemon only from a root-owned file that others cannot write.
    $SUDO install -m 644 -o root -g wheel "$SERVICE_FILE" "/Library/LaunchDaemons/$LABEL.plist"
    $SUDO launchctl bootout "system/$LABEL" 2>/dev/null || true
    $SUDO launchctl bootstrap system "/Library/LaunchDaemons/$LABEL.plist"
    $SUDO launchctl enable "system/$LABEL"
fi
