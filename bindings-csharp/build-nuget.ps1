#Requires -Version 7.0
<#
.SYNOPSIS
    Builds the callpush NuGet packages: Callpush (with callpush.dll for win-x64, win-arm64 and
    win-x86) and Callpush.Windows.

.DESCRIPTION
    For maintainers and CI, on Windows with PowerShell 7 and:
      - rustup and cargo (https://rustup.rs);
      - Visual Studio 2022 or its Build Tools with "Desktop development with C++", including the
        MSVC x64/x86 and ARM64 build tools (cargo links the library with MSVC's link.exe);
      - the .NET SDK 8 or later;
      - for the UWP target of Callpush.Windows, the "Universal Windows Platform development"
        workload (or skip that target with -SkipUwp).

    Steps:
      1. rustup adds the three Rust targets;
      2. cargo builds the FFI crate (callpush-ffi) for each, and target/<triple>/<profile>/callpush.dll
         is copied to bindings-csharp/native/<rid>/callpush.dll;
      3. dotnet packs Callpush: src/Callpush/Callpush.nuspec, the package's one definition (which
         bindings-csharp/check-package.sh also packs and checks on Linux), with the assembly and
         the three libraries from bindings-csharp/native;
      4. Callpush.Windows is built and packed: both targets with Visual Studio's MSBuild, or with
         -SkipUwp the Windows App SDK target alone with dotnet;
      5. each package is checked for what it must hold (its files and its version), and their
         paths printed: target/packages/nuget/, where the release workflow collects them.

    Any failure stops the script with a message naming the step.

.PARAMETER Version
    The package version, e.g. 0.2.0 or 0.2.0-beta.1. Default: callpush's version, the `version`
    under [workspace.package] in the root Cargo.toml, read by the rule of release/version.sh
    (which CI passes in: -Version $(bash release/version.sh)).

.PARAMETER CargoProfile
    The cargo profile of the native library: mobile (default: size-optimised, stripped), release
    or dev.

.PARAMETER Configuration
    The .NET build configuration: Release (default) or Debug.

.PARAMETER SkipUwp
    Builds and packs Callpush.Windows for the Windows App SDK only, with dotnet; no Visual Studio
    UWP workload needed.

.EXAMPLE
    pwsh bindings-csharp/build-nuget.ps1

.EXAMPLE
    pwsh bindings-csharp/build-nuget.ps1 -Version 0.2.0 -SkipUwp
#>
[CmdletBinding()]
param(
    [string] $Version = '',
    [ValidateSet('mobile', 'release', 'dev')] [string] $CargoProfile = 'mobile',
    [ValidateSet('Release', 'Debug')] [string] $Configuration = 'Release',
    [switch] $SkipUwp
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0
Add-Type -AssemblyName System.IO.Compression.FileSystem

# Runs a native command and stops the script when it exits non-zero.
function Invoke-Step {
    param(
        [Parameter(Mandatory)] [string] $What,
        [Parameter(Mandatory)] [scriptblock] $Command
    )
    Write-Host "==> $What"
    & $Command
    if ($LASTEXITCODE -ne 0) {
        throw "build-nuget.ps1: $What failed (exit code $LASTEXITCODE)"
    }
}

# The entry names (paths) of a .nupkg, which is a zip file.
function Get-PackageEntries {
    param([Parameter(Mandatory)] [string] $Path)
    if (-not (Test-Path -LiteralPath $Path)) {
        throw "build-nuget.ps1: the package $Path was not written"
    }
    $zip = [System.IO.Compression.ZipFile]::OpenRead($Path)
    try {
        return @($zip.Entries | ForEach-Object { $_.FullName })
    }
    finally {
        $zip.Dispose()
    }
}

# The <id> and <version> of the .nuspec at the root of a .nupkg.
function Get-PackageIdentity {
    param([Parameter(Mandatory)] [string] $Path)
    $zip = [System.IO.Compression.ZipFile]::OpenRead($Path)
    try {
        $entry = @($zip.Entries | Where-Object { $_.FullName -notmatch '/' -and $_.FullName -like '*.nuspec' })
        if ($entry.Count -ne 1) {
            throw "build-nuget.ps1: $(Split-Path -Leaf $Path) holds $($entry.Count) .nuspec files at its root, not one"
        }
        $reader = [System.IO.StreamReader]::new($entry[0].Open())
        try {
            [xml] $nuspec = $reader.ReadToEnd()
        }
        finally {
            $reader.Dispose()
        }
        return [pscustomobject]@{
            Id      = $nuspec.package.metadata.id
            Version = $nuspec.package.metadata.version
        }
    }
    finally {
        $zip.Dispose()
    }
}

# Stops the script unless the package is the one wanted: its nuspec's id and version.
function Assert-PackageIdentity {
    param(
        [Parameter(Mandatory)] [string] $Path,
        [Parameter(Mandatory)] [string] $Id
    )
    $identity = Get-PackageIdentity -Path $Path
    if ($identity.Id -ne $Id -or $identity.Version -ne $Version) {
        throw "build-nuget.ps1: $(Split-Path -Leaf $Path) says $($identity.Id) $($identity.Version), not $Id $Version"
    }
}

# Stops the script unless the package holds an entry matching each pattern.
function Assert-PackageHolds {
    param(
        [Parameter(Mandatory)] [string] $Path,
        [Parameter(Mandatory)] [string[]] $Patterns
    )
    $entries = Get-PackageEntries -Path $Path
    foreach ($pattern in $Patterns) {
        if (-not ($entries | Where-Object { $_ -match $pattern })) {
            throw "build-nuget.ps1: $(Split-Path -Leaf $Path) has no entry matching $pattern; it holds: $($entries -join ', ')"
        }
    }
    Write-Host "    ok  $(Split-Path -Leaf $Path)"
}

if (-not $IsWindows) {
    throw 'build-nuget.ps1 builds the Windows libraries with MSVC and runs on Windows only'
}

$here = $PSScriptRoot
$root = (Resolve-Path -LiteralPath (Join-Path $here '..')).Path
if (-not $Version) {
    # release/version.sh's rule: the first `version = "..."` under [workspace.package] in the root
    # Cargo.toml. Read here rather than through bash, which a Windows checkout may lack (or have
    # given the script CRLF line endings).
    $section = ''
    foreach ($line in Get-Content -LiteralPath (Join-Path $root 'Cargo.toml')) {
        if ($line -match '^\[') {
            $section = $line.TrimEnd()
        }
        elseif ($section -eq '[workspace.package]' -and $line -match '^version *= *"([^"]*)"') {
            $Version = $Matches[1]
            break
        }
    }
    if (-not $Version) {
        throw 'build-nuget.ps1: no version under [workspace.package] in Cargo.toml; pass -Version'
    }
}
if ($Version -notmatch '^\d+\.\d+\.\d+(-[0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$') {
    throw "build-nuget.ps1: -Version must look like 1.2.3 or 1.2.3-beta.1, not '$Version'"
}

$hints = @{
    cargo  = 'install Rust with rustup: https://rustup.rs'
    rustup = 'install Rust with rustup: https://rustup.rs'
    dotnet = 'install the .NET SDK 8 or later: https://dot.net'
}
foreach ($tool in 'cargo', 'rustup', 'dotnet') {
    if (-not (Get-Command $tool -ErrorAction SilentlyContinue)) {
        throw "build-nuget.ps1 needs $tool on PATH ($($hints[$tool]))"
    }
}
$dotnetVersion = (& dotnet --version | Select-Object -Last 1)
if ($LASTEXITCODE -ne 0 -or [int]($dotnetVersion.Split('.')[0]) -lt 8) {
    throw "build-nuget.ps1 needs the .NET SDK 8 or later (dotnet --version says '$dotnetVersion')"
}

$msbuild = $null
if (-not $SkipUwp) {
    $vswhere = Join-Path ${env:ProgramFiles(x86)} 'Microsoft Visual Studio\Installer\vswhere.exe'
    if (Test-Path -LiteralPath $vswhere) {
        $msbuild = & $vswhere -latest -products * -requiresAny `
            -requires Microsoft.VisualStudio.Workload.Universal Microsoft.VisualStudio.Workload.UniversalBuildTools `
            -find 'MSBuild\**\Bin\MSBuild.exe' | Select-Object -First 1
    }
    if (-not $msbuild) {
        throw ('build-nuget.ps1: no Visual Studio with the "Universal Windows Platform development" workload was found ' +
            '(its MSBuild builds the UWP target of Callpush.Windows); install it, or pass -SkipUwp')
    }
}

$nativeDir = Join-Path $here 'native'
$outDir = Join-Path $root 'target' 'packages' 'nuget'
$coreProject = Join-Path $here 'src' 'Callpush' 'Callpush.csproj'
$windowsProject = Join-Path $here 'src' 'Callpush.Windows' 'Callpush.Windows.csproj'
$profileDir = if ($CargoProfile -eq 'dev') { 'debug' } else { $CargoProfile }

# Rust target triple → .NET runtime identifier.
$targets = [ordered]@{
    'x86_64-pc-windows-msvc'  = 'win-x64'
    'aarch64-pc-windows-msvc' = 'win-arm64'
    'i686-pc-windows-msvc'    = 'win-x86'
}
$triples = @($targets.Keys)

Invoke-Step -What 'rustup target add (x64, arm64, x86)' -Command { rustup target add @triples }

if (Test-Path -LiteralPath $nativeDir) {
    Remove-Item -LiteralPath $nativeDir -Recurse -Force
}
Push-Location $root
try {
    foreach ($triple in $triples) {
        $rid = $targets[$triple]
        Invoke-Step -What "cargo build callpush-ffi for $triple ($CargoProfile)" -Command {
            cargo build --locked -p callpush-ffi --profile $CargoProfile --target $triple
        }
        $dll = Join-Path $root 'target' $triple $profileDir 'callpush.dll'
        if (-not (Test-Path -LiteralPath $dll)) {
            throw "build-nuget.ps1: cargo succeeded but $dll is missing"
        }
        $destination = Join-Path $nativeDir $rid
        New-Item -ItemType Directory -Force -Path $destination | Out-Null
        Copy-Item -LiteralPath $dll -Destination (Join-Path $destination 'callpush.dll') -Force
        Write-Host "    $rid/callpush.dll  $((Get-Item -LiteralPath $dll).Length) bytes"
    }
}
finally {
    Pop-Location
}

New-Item -ItemType Directory -Force -Path $outDir | Out-Null
$corePackage = Join-Path $outDir "Callpush.$Version.nupkg"
$windowsPackage = Join-Path $outDir "Callpush.Windows.$Version.nupkg"
# The folder holds this build's packages alone (the release workflow takes every .nupkg in it).
Get-ChildItem -LiteralPath $outDir -Filter 'Callpush.*.nupkg' | Remove-Item -Force

Invoke-Step -What "dotnet pack Callpush $Version" -Command {
    dotnet pack $coreProject --nologo -c $Configuration -o $outDir "-p:Version=$Version" "-p:NativeDir=$nativeDir"
}

if ($SkipUwp) {
    Invoke-Step -What "dotnet pack Callpush.Windows $Version (Windows App SDK target)" -Command {
        dotnet pack $windowsProject --nologo -c $Configuration -o $outDir "-p:Version=$Version"
    }
}
else {
    Invoke-Step -What "msbuild pack Callpush.Windows $Version (Windows App SDK and UWP targets)" -Command {
        & $msbuild $windowsProject -nologo -v:minimal -restore -t:Pack "-p:Configuration=$Configuration" `
            "-p:PackageOutputPath=$outDir" "-p:Version=$Version"
    }
}

Write-Host '==> checking the packages'
Assert-PackageHolds -Path $corePackage -Patterns @(
    '^lib/netstandard2\.0/Callpush\.dll$',
    '^lib/netstandard2\.0/Callpush\.xml$',
    '^runtimes/win-x64/native/callpush\.dll$',
    '^runtimes/win-arm64/native/callpush\.dll$',
    '^runtimes/win-x86/native/callpush\.dll$',
    '^README\.md$'
)
$windowsPatterns = @('^lib/net6\.0-windows10\.0\.19041(\.0)?/Callpush\.Windows\.dll$', '^README\.md$')
if (-not $SkipUwp) {
    $windowsPatterns += '^lib/uap10\.0\.17763(\.0)?/Callpush\.Windows\.dll$'
}
Assert-PackageHolds -Path $windowsPackage -Patterns $windowsPatterns
Assert-PackageIdentity -Path $corePackage -Id 'Callpush'
Assert-PackageIdentity -Path $windowsPackage -Id 'Callpush.Windows'

Write-Host ''
Write-Host "Packages (version $Version) in ${outDir}:"
Write-Host "  $corePackage"
Write-Host "  $windowsPackage"
if ($SkipUwp) {
    Write-Host '  (Callpush.Windows without its UWP target: built with -SkipUwp)'
}
Write-Host 'Check them on Linux too: bindings-csharp/check-package.sh <the .nupkg files> (see the README).'
