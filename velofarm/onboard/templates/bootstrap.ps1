# velofarm worker bootstrap for @@NAME@@ (windows), written by `velofarm worker add`.
#
# Creates a virtualenv with buildbot-worker @@VERSION@@ (the master's version), a worker folder
# bound to the master @@MASTER@@, and a scheduled task that keeps the worker running.
# This file holds no password: pass the file that holds it with -PasswordFile. It is copied to
# the worker folder (readable by this user and Administrators only) and read by buildbot.tac;
# it never appears on a command line. Safe to run again (after `velofarm worker rotate`).
#
# Why a scheduled task and not a Windows service: buildbot-worker's own service needs pywin32,
# a registry entry per worker folder and, to see the build user's rustup and Visual Studio
# setup, that user's password stored in the service; NSSM is a third-party download. A task
# that starts at boot runs as the build user without storing a password (S4U logon) and is
# built into every Windows since 8 / Server 2012.
#
# Run it from an elevated PowerShell, as the user that owns the Rust toolchain:
#   powershell -ExecutionPolicy Bypass -File bootstrap.ps1 -PasswordFile C:\path\worker.password
# With -CaFile C:\path\ca.pem (the master has pb_tls = true) the worker connects over TLS and
# trusts only that CA, for PB and for uploads.
[CmdletBinding()]
param(
    [string]$PasswordFile = "",
    [string]$CaFile = "",
    [string]$Dir = "C:\velofarm-worker",
    [string]$Python = "python",
    [string]$PipArgs = "",
    [string]$Venv = "",
    [switch]$NoService,
    [switch]$Doctor
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$Name = "@@NAME@@"
$Master = "@@MASTER@@"
$Version = "@@VERSION@@"
$Platforms = @(@@PLATFORMS@@)
$TaskName = "velofarm-worker-$Name"
$Here = $PSScriptRoot

function Step([string]$Text) { Write-Host "==> $Text" }

# Native programs do not throw on failure; stop at the first one that fails.
function Invoke-Checked([string]$Exe, [string[]]$Arguments) {
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed (exit code $LASTEXITCODE)" }
}

# What each platform build needs here: the same check (and fix commands) as the build's
# "preflight" step (its toolchain part), from the same preflight.py.
function Test-Toolchain([string]$Py) {
    $ok = $true
    foreach ($Platform in $Platforms) {
        & $Py "$Here\toolchain\preflight.py" toolchain "$Here\toolchain\$Platform.json" | Out-Host
        if ($LASTEXITCODE -ne 0) { $ok = $false }
    }
    return $ok
}

if ($Doctor) {
    if (Test-Toolchain $Python) { exit 0 } else { exit 1 }
}

if (-not $PasswordFile) {
    throw "-PasswordFile FILE is required: copy secrets\worker-$Name from the master (see README.md)"
}
if (-not (Test-Path -LiteralPath $PasswordFile -PathType Leaf) -or (Get-Item -LiteralPath $PasswordFile).Length -eq 0) {
    throw "${PasswordFile}: missing or empty; copy secrets\worker-$Name from the master"
}
$Dir = [System.IO.Path]::GetFullPath($Dir)

# The worker folder holds buildbot.tac, the venv and the built binaries. Under C:\ it would
# inherit "Authenticated Users: Modify", so any local user could change what the worker runs.
# Before anything is written there: no inherited access, no access for Authenticated Users,
# Users or Everyone; the account the task runs as and Administrators only, for the folder and
# (/T) everything already in it; new files inherit the same (OI)(CI).
New-Item -ItemType Directory -Force -Path $Dir | Out-Null
Invoke-Checked "icacls.exe" @($Dir, "/inheritance:r", "/grant:r", "${env:USERDOMAIN}\${env:USERNAME}:(OI)(CI)F", "/grant:r", "*S-1-5-32-544:(OI)(CI)F", "/T", "/C", "/Q")
Invoke-Checked "icacls.exe" @($Dir, "/remove:g", "*S-1-5-11", "*S-1-5-32-545", "*S-1-1-0", "/T", "/C", "/Q")
Step "locked $Dir to ${env:USERNAME} and Administrators"

if ($Venv) {
    Step "using the existing virtualenv $Venv"
} else {
    $Venv = Join-Path $Dir "venv"
    if (-not (Test-Path (Join-Path $Venv "Scripts\python.exe"))) {
        Step "creating the virtualenv $Venv with $Python"
        Invoke-Checked $Python @("-m", "venv", $Venv)
    }
    Step "installing buildbot-worker==$Version"
    $PipList = @($PipArgs -split '\s+' | Where-Object { $_ })
    $TlsPackages = @(if ($CaFile) { "pyOpenSSL", "service-identity" })  # Twisted's tls: endpoint needs them
    Invoke-Checked (Join-Path $Venv "Scripts\python.exe") (@("-m", "pip", "install", "--quiet", "--disable-pip-version-check") + $PipList + @("buildbot-worker==$Version") + $TlsPackages)
}
$VenvPython = Join-Path $Venv "Scripts\python.exe"
$Found = & $VenvPython -c "from importlib.metadata import version; print(version('buildbot-worker'))"
if ($Found -ne $Version) {
    throw "$Venv holds buildbot-worker '$Found', not $Version (the master's version); drop -Venv, or install buildbot-worker==$Version there"
}

$Worker = Join-Path $Dir "worker"
if (Test-Path (Join-Path $Worker "buildbot.tac")) {
    Step "keeping the worker folder $Worker (delete it to start over)"
} else {
    Step "creating the worker folder $Worker for master $Master"
    Invoke-Checked (Join-Path $Venv "Scripts\buildbot-worker.exe") @("create-worker", "--quiet", $Worker, $Master, $Name, "@@PLACEHOLDER@@")
}

# buildbot.tac reads the password from worker.password beside it (UTF-8 without a BOM: Python reads it).
$Tac = Join-Path $Worker "buildbot.tac"
$ReadFile = '@@READ_FILE@@'
$Text = [System.IO.File]::ReadAllText($Tac)
if (-not $Text.Contains($ReadFile)) {
    $PasswdLine = [regex]'(?m)^passwd = .*$'
    if (-not $PasswdLine.IsMatch($Text)) { throw "${Tac}: no 'passwd = ...' line; delete $Worker and run this script again" }
    $Text = $PasswdLine.Replace($Text, [System.Text.RegularExpressions.MatchEvaluator] { param($m) $ReadFile }, 1)
    [System.IO.File]::WriteAllText($Tac, $Text, (New-Object System.Text.UTF8Encoding $false))
}
$PasswordCopy = Join-Path $Worker "worker.password"
Copy-Item -LiteralPath $PasswordFile -Destination $PasswordCopy -Force
# The NTFS counterpart of mode 0600: no inherited access; this user and Administrators only.
Invoke-Checked "icacls.exe" @($PasswordCopy, "/inheritance:r", "/grant:r", "${env:USERDOMAIN}\${env:USERNAME}:(R,W)", "/grant:r", "*S-1-5-32-544:(F)")
Step "password copied to $PasswordCopy (this user and Administrators only)"

if ($CaFile) {
    if (-not (Test-Path -LiteralPath $CaFile -PathType Leaf)) { throw "${CaFile}: missing; copy the farm's CA certificate from the master" }
    $CaDir = Join-Path $Worker "master-ca"
    New-Item -ItemType Directory -Force -Path $CaDir | Out-Null
    Copy-Item -LiteralPath $CaFile -Destination (Join-Path $CaDir "ca.pem") -Force
    # Twisted's tls: endpoint, trusting only this CA ('\' and ':' escaped as endpoint strings need).
    $HostName, $Port = $Master -split ':', 2
    $Escaped = $CaDir.Replace('\', '\\').Replace(':', '\:')
    $Conn = "tls:host=${HostName}:port=${Port}:trustRoots=$Escaped"
    $HostLines = [regex]'(?m)^buildmaster_host = .*\r?\nport = .*\r?\nconnection_string = .*$'
    $Text = [System.IO.File]::ReadAllText($Tac)
    if (-not $HostLines.IsMatch($Text)) { throw "${Tac}: no buildmaster_host/port/connection_string lines; delete $Worker and run this script again" }
    $Lines = "buildmaster_host = None`nport = None`nconnection_string = '" + $Conn.Replace('\', '\\') + "'  # velofarm: TLS"
    $Text = $HostLines.Replace($Text, [System.Text.RegularExpressions.MatchEvaluator] { param($m) $Lines }, 1)
    [System.IO.File]::WriteAllText($Tac, $Text, (New-Object System.Text.UTF8Encoding $false))
    Step "TLS: the worker trusts only $CaDir\ca.pem"
}

if (-not $NoService) {
    Step "registering the scheduled task $TaskName (at startup, as ${env:USERNAME}, restarted if it exits)"
    $Action = New-ScheduledTaskAction -Execute (Join-Path $Venv "Scripts\buildbot-worker.exe") -Argument "start --nodaemon `"$Worker`"" -WorkingDirectory $Worker
    # At boot, and every 5 minutes: a worker that exited is started again; IgnoreNew keeps one instance.
    $Triggers = @((New-ScheduledTaskTrigger -AtStartup), (New-ScheduledTaskTrigger -Once -At (Get-Date) -RepetitionInterval (New-TimeSpan -Minutes 5)))
    $Settings = New-ScheduledTaskSettingsSet -MultipleInstances IgnoreNew -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 3 -RestartInterval (New-TimeSpan -Minutes 1) -StartWhenAvailable -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
    $Principal = New-ScheduledTaskPrincipal -UserId "${env:USERDOMAIN}\${env:USERNAME}" -LogonType S4U -RunLevel Limited
    Register-ScheduledTask -TaskName $TaskName -Action $Action -Trigger $Triggers -Settings $Settings -Principal $Principal -Description "velofarm worker $Name (Buildbot worker for $Master)" -Force | Out-Null
    # Stop first so that a second run (a new password) reaches the running worker.
    Stop-ScheduledTask -TaskName $TaskName
    Start-ScheduledTask -TaskName $TaskName
}

Step "checking this machine's toolchain for: $($Platforms -join ' ')"
if (Test-Toolchain $VenvPython) {
    $Toolchain = "every platform's toolchain is here"
} else {
    $Toolchain = "MISSING toolchain items above: run their fix commands, then check again with: powershell -File $Here\bootstrap.ps1 -Doctor"
}
Write-Host ""
Write-Host "Worker $Name is set up in $Worker (master $Master)."
Write-Host "  toolchain: $Toolchain"
Write-Host "  connected? on the master: velofarm worker list; here: Select-String -Path $Worker\twistd.log -Pattern 'worker is ready|unauthorized'"
if ($NoService) {
    Write-Host "  start it by hand: $Venv\Scripts\buildbot-worker.exe start $Worker"
} else {
    Write-Host "  task: Get-ScheduledTask -TaskName $TaskName | Get-ScheduledTaskInfo"
}
