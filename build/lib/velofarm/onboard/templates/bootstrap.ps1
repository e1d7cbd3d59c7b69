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
[CmdletBinding()]
param(
    [string]$PasswordFile = "",
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
# "toolchain check" step, from the same preflight.py.
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

if ($Venv) {
    Step "using the existing virtualenv $Venv"
} else {
    $Venv = Join-Path $Dir "venv"
    New-Item -ItemType Directory -Force -Path $Dir | Out-Null
    if (-not (Test-Path (Join-Path $Venv "Scripts\python.exe"))) {
        Step "creating the virtualenv $Venv with $Python"
        Invoke-Checked $Python @("-m", "venv", $Venv)
    }
    Step "installing buildbot-worker==$Version"
    $PipList = @($PipArgs -split '\s+' | Where-Object { $_ })
    Invoke-Checked (Join-Path $Venv "Scripts\python.exe") (@("-m", "pip", "install", "--quiet", "--disable-pip-version-check") + $PipList + @("buildbot-worker==$Version"))
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
