#Requires -Version 7.0
<#
.SYNOPSIS
    The C# suite (bindings-csharp/tests) on Windows, under .NET Framework 4.8, against the library,
    the server and callpush-dev built for Windows: tests/run.sh's run, with Windows' tools.

.DESCRIPTION
    For maintainers and CI (the windows workflow), on Windows x64 with PowerShell 7 and:
      - rustup and cargo (https://rustup.rs), with the MSVC toolchain (Visual Studio 2022 or its
        Build Tools with "Desktop development with C++");
      - Visual Studio 2022 (or its Build Tools) with MSBuild, whose Roslyn csc.exe compiles the tests;
      - .NET Framework 4.8, which runs them;
      - nuget.exe on PATH (downloaded into target\tools when missing), which fetches NUnit.

    Steps, as tests/run.sh does them under Mono:
      1. cargo builds the library alone (callpush-ffi: target\debug\callpush.dll), then the server
         and callpush-dev (callpush.exe, callpush-dev.exe), which the flow tests run;
      2. nuget installs NUnit 2.6.4, its console runner (NUnit.Runners 2.6.4) and System.Json 4.7.1
         (the tests' JSON, which Mono has built in) into target\csharp-tests-packages;
      3. csc (-langversion:7.2, warnings as errors) compiles Callpush.dll with its XML
         documentation from every .cs file under bindings-csharp\src\Callpush, then
         Callpush.Tests.dll from every .cs file under bindings-csharp\tests: the rule of
         tests/mono.sh and tests/run.sh, so a new file is compiled by both;
      4. nunit-console (x64, .NET Framework 4.8, in its own domain as under Mono) runs them from
         target\csharp-tests with callpush.dll beside them; its output goes to
         target\csharp-tests\nunit.log and its results to results.xml.

    It prints each failed test and a summary line, and stops with an error when the build, the
    compilation or any test failed, when no test ran, or when the run outlived -TimeoutMinutes.
    Not here: tests/run.sh's tree-sitter parse of Callpush.Windows (Windows compiles those files
    for real: build-nuget.ps1).

.PARAMETER TimeoutMinutes
    How long the NUnit run may take before it is ended and the script fails (default 15; it
    takes well under a minute).

.EXAMPLE
    pwsh bindings-csharp/tests/run-windows.ps1
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 120)] [int] $TimeoutMinutes = 15
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

# Runs a native command and stops the script when it exits non-zero.
function Invoke-Step {
    param(
        [Parameter(Mandatory)] [string] $What,
        [Parameter(Mandatory)] [scriptblock] $Command
    )
    Write-Host "    $What"
    & $Command
    if ($LASTEXITCODE -ne 0) {
        throw "run-windows.ps1: $What failed (exit code $LASTEXITCODE)"
    }
}

# Every .cs file under a folder, sorted by path: the rule of tests/mono.sh and tests/run.sh
# (`find FOLDER -name '*.cs' | sort`). Build output (bin, obj: a dotnet build of a project there)
# is not a source.
function Get-CSharpSources {
    param([Parameter(Mandatory)] [string] $Folder)
    $files = @(Get-ChildItem -LiteralPath $Folder -Recurse -File -Filter '*.cs' |
        Where-Object { $_.Extension -eq '.cs' } |
        Where-Object {
            $relative = [System.IO.Path]::GetRelativePath($Folder, $_.FullName)
            $relative -notmatch '(^|[\\/])(bin|obj)[\\/]'
        } |
        ForEach-Object { $_.FullName })
    if ($files.Count -eq 0) {
        throw "run-windows.ps1: no .cs file under $Folder"
    }
    [Array]::Sort($files, [StringComparer]::Ordinal)
    return , $files
}

# A file of an installed package, by name. With -Lib, the first of the lib\<framework> folders
# matching those patterns, in their order (never ref\, which holds reference assemblies).
function Find-PackageFile {
    param(
        [Parameter(Mandatory)] [string] $Package,
        [Parameter(Mandatory)] [string] $Name,
        [string[]] $Lib = @()
    )
    $found = @(Get-ChildItem -LiteralPath $Package -Recurse -File -Filter $Name)
    if ($Lib.Count -eq 0) {
        if ($found.Count -eq 0) {
            throw "run-windows.ps1: no $Name in $Package"
        }
        return $found[0].FullName
    }
    foreach ($pattern in $Lib) {
        $match = @($found | Where-Object { $_.Directory.Name -like $pattern -and $_.Directory.Parent.Name -eq 'lib' })
        if ($match.Count -gt 0) {
            return $match[0].FullName
        }
    }
    throw "run-windows.ps1: no $Name in $Package under lib\ for $($Lib -join ' or ')"
}

if (-not $IsWindows) {
    throw 'run-windows.ps1 runs the C# suite on Windows (.NET Framework); elsewhere run bindings-csharp/tests/run.sh (Mono)'
}
if (-not [Environment]::Is64BitOperatingSystem) {
    throw 'run-windows.ps1 needs 64-bit Windows: the tests load the x64 callpush.dll cargo builds'
}

$root = (Resolve-Path -LiteralPath (Join-Path $PSScriptRoot '..' '..')).Path
$out = Join-Path $root 'target' 'csharp-tests'
$packages = Join-Path $root 'target' 'csharp-tests-packages'
$started = Get-Date

# --- tools --------------------------------------------------------------------------------------
if (-not (Get-Command cargo -ErrorAction SilentlyContinue)) {
    throw 'run-windows.ps1 needs cargo on PATH (install Rust with rustup: https://rustup.rs)'
}
$vswhere = Join-Path ${env:ProgramFiles(x86)} 'Microsoft Visual Studio\Installer\vswhere.exe'
$csc = $null
if (Test-Path -LiteralPath $vswhere) {
    $csc = & $vswhere -latest -products * -requires Microsoft.Component.MSBuild `
        -find 'MSBuild\**\Bin\Roslyn\csc.exe' | Select-Object -First 1
}
if (-not $csc) {
    throw 'run-windows.ps1: no Visual Studio (or Build Tools) with MSBuild and its Roslyn csc.exe was found by vswhere'
}
$nuget = Get-Command nuget -ErrorAction SilentlyContinue | Select-Object -First 1 -ExpandProperty Source
if (-not $nuget) {
    $nuget = Join-Path $root 'target' 'tools' 'nuget.exe'
    if (-not (Test-Path -LiteralPath $nuget)) {
        Write-Host '    downloading nuget.exe into target\tools'
        New-Item -ItemType Directory -Force -Path (Split-Path -Parent $nuget) | Out-Null
        Invoke-WebRequest -Uri 'https://dist.nuget.org/win-x86-commandline/latest/nuget.exe' -OutFile $nuget
    }
}

# --- 1. the library, the server and callpush-dev --------------------------------------------------
Push-Location $root
try {
    # The library alone first, so that no feature another crate enables is unified into it.
    Invoke-Step -What 'cargo build -p callpush-ffi (the library)' -Command {
        cargo build --quiet --locked -p callpush-ffi
    }
    Invoke-Step -What 'cargo build -p callpush-server -p callpush-dev (the flow tests run them)' -Command {
        cargo build --quiet --locked -p callpush-server -p callpush-dev
    }
}
finally {
    Pop-Location
}
$debug = Join-Path $root 'target' 'debug'
$library = Join-Path $debug 'callpush.dll'
foreach ($built in $library, (Join-Path $debug 'callpush.exe'), (Join-Path $debug 'callpush-dev.exe')) {
    if (-not (Test-Path -LiteralPath $built)) {
        throw "run-windows.ps1: cargo succeeded but $built is missing"
    }
}

# --- 2. NUnit 2.6.4 and System.Json ---------------------------------------------------------------
New-Item -ItemType Directory -Force -Path $packages | Out-Null
$wanted = [ordered]@{ 'NUnit' = '2.6.4'; 'NUnit.Runners' = '2.6.4'; 'System.Json' = '4.7.1' }
foreach ($id in $wanted.Keys) {
    $version = $wanted[$id]
    if (-not (Test-Path -LiteralPath (Join-Path $packages "$id.$version"))) {
        Invoke-Step -What "nuget install $id $version" -Command {
            & $nuget install $id -Version $version -OutputDirectory $packages -NonInteractive -Verbosity quiet
        }
    }
}
$nunitFramework = Find-PackageFile -Package (Join-Path $packages 'NUnit.2.6.4') -Name 'nunit.framework.dll'
# nunit-console.exe, not nunit-console-x86.exe: AnyCPU, so a 64-bit process on 64-bit Windows.
$nunitConsole = Find-PackageFile -Package (Join-Path $packages 'NUnit.Runners.2.6.4') -Name 'nunit-console.exe'
# A .NET Framework build when the package has one, else .NET Standard 2.0 (which .NET Framework
# 4.7.1+ runs, compiled against its netstandard.dll facade).
$systemJson = Find-PackageFile -Package (Join-Path $packages 'System.Json.4.7.1') -Name 'System.Json.dll' `
    -Lib @('net4*', 'netstandard2.0')
$jsonReferences = @("-r:$systemJson")
if ((Split-Path -Leaf (Split-Path -Parent $systemJson)) -like 'netstandard*') {
    $facades = @(
        (Get-ChildItem -Path (Join-Path ${env:ProgramFiles(x86)} 'Reference Assemblies\Microsoft\Framework\.NETFramework\v4.*\Facades\netstandard.dll') -ErrorAction SilentlyContinue |
            Sort-Object FullName -Descending | ForEach-Object { $_.FullName })
        (Join-Path $env:WINDIR 'Microsoft.NET\Framework64\v4.0.30319\netstandard.dll')
        (Get-ChildItem -Path (Join-Path $env:WINDIR 'Microsoft.NET\assembly\GAC_MSIL\netstandard\*\netstandard.dll') -ErrorAction SilentlyContinue |
            ForEach-Object { $_.FullName })
    ) | Where-Object { $_ -and (Test-Path -LiteralPath $_) }
    if (-not $facades) {
        throw 'run-windows.ps1: no netstandard.dll of .NET Framework 4.7.1+ (a targeting pack, or the runtime) to compile against System.Json for .NET Standard'
    }
    $jsonReferences += "-r:$(@($facades)[0])"
}

# --- 3. compile --------------------------------------------------------------------------------
if (Test-Path -LiteralPath $out) {
    Remove-Item -LiteralPath $out -Recurse -Force
}
New-Item -ItemType Directory -Force -Path $out | Out-Null
$portable = Get-CSharpSources -Folder (Join-Path $root 'bindings-csharp' 'src' 'Callpush')
$tests = Get-CSharpSources -Folder (Join-Path $root 'bindings-csharp' 'tests')
# As tests/mono.sh's mcs: C# 7.2, warnings as errors, XML documentation checked. 1701/1702
# (assembly unification) are off as in every .NET SDK build. Windows PDBs give failures their lines.
$common = @('-nologo', '-langversion:7.2', '-warnaserror+', '-nowarn:1701,1702', '-debug:full', '-target:library')

Invoke-Step -What "csc Callpush.dll ($($portable.Count) files, XML documentation)" -Command {
    & $csc @common "-doc:$(Join-Path $out 'Callpush.xml')" '-r:System.Net.Http.dll' '-r:System.Xml.Linq.dll' `
        "-out:$(Join-Path $out 'Callpush.dll')" @portable
}
Invoke-Step -What "csc Callpush.Tests.dll ($($tests.Count) files)" -Command {
    & $csc @common "-r:$(Join-Path $out 'Callpush.dll')" "-r:$nunitFramework" @jsonReferences `
        '-r:System.Net.Http.dll' '-r:System.Xml.Linq.dll' "-out:$(Join-Path $out 'Callpush.Tests.dll')" @tests
}

# --- 4. run ------------------------------------------------------------------------------------
Copy-Item -LiteralPath $library, $nunitFramework, $systemJson -Destination $out
$log = Join-Path $out 'nunit.log'
$errors = Join-Path $out 'nunit.stderr.log'
$results = Join-Path $out 'results.xml'
Write-Host "    nunit-console $((Get-Item -LiteralPath $nunitConsole).VersionInfo.FileVersion) under .NET Framework (x64), at most $TimeoutMinutes min"
# From target\csharp-tests (NUnit 2.6 loads the test assembly by its file name from the working
# directory), callpush.dll found there and through PATH; -noshadow keeps the assemblies beside it;
# -domain:None and -process:Single: the tests run in nunit-console's own process and domain, as
# under Mono, so no domain is unloaded under the library's threads.
$savedPath = $env:PATH
$env:PATH = "$out;$env:PATH"
try {
    $nunit = Start-Process -FilePath $nunitConsole -WorkingDirectory $out -NoNewWindow -PassThru `
        -RedirectStandardOutput $log -RedirectStandardError $errors `
        -ArgumentList @('-nologo', '-noshadow', '-domain:None', '-process:Single', '-labels', '-xml=results.xml', 'Callpush.Tests.dll')
    $null = $nunit.Handle # keeps the exit code readable after the process ended
    if (-not $nunit.WaitForExit($TimeoutMinutes * 60 * 1000)) {
        $nunit.Kill($true)
        $nunit.WaitForExit()
        Get-Content -LiteralPath $log, $errors -ErrorAction SilentlyContinue | Write-Host
        throw "run-windows.ps1: nunit-console did not end within $TimeoutMinutes min (the last test it started is above); ended it"
    }
    $nunit.WaitForExit()
    $exitCode = $nunit.ExitCode
}
finally {
    $env:PATH = $savedPath
}

$summaryLine = @(Select-String -LiteralPath $log -Pattern '^Tests run:' | ForEach-Object { $_.Line })
$cases = @()
if (Test-Path -LiteralPath $results) {
    [xml] $xml = Get-Content -LiteralPath $results -Raw
    $cases = @($xml.SelectNodes('//test-case'))
}
$passed = @($cases | Where-Object { $_.executed -eq 'True' -and $_.success -eq 'True' })
$failed = @($cases | Where-Object { $_.executed -eq 'True' -and $_.success -ne 'True' })
$skipped = @($cases | Where-Object { $_.executed -ne 'True' })

if ($exitCode -ne 0 -or $failed.Count -gt 0 -or $passed.Count -eq 0) {
    Get-Content -LiteralPath $log, $errors -ErrorAction SilentlyContinue | Write-Host
    foreach ($case in $failed) {
        Write-Host "      FAIL  $($case.name)"
    }
    Write-Host "csharp-tests (Windows): $($passed.Count) passed, $($failed.Count) failed, $($skipped.Count) skipped"
    if ($passed.Count -eq 0 -and $failed.Count -eq 0) {
        throw "run-windows.ps1: no test ran (nunit-console exit code $exitCode); its output is above"
    }
    throw "run-windows.ps1: the C# suite failed (nunit-console exit code $exitCode); its output is above"
}
foreach ($line in $summaryLine) {
    Write-Host "      $line"
}
$fixtures = $passed | Group-Object { ($_.name -split '\.')[-2] } | Sort-Object Name
foreach ($fixture in $fixtures) {
    Write-Host ('      ok    {0,-20} {1} tests' -f $fixture.Name, $fixture.Count)
}
Write-Host ("    done in {0:N0} s" -f ((Get-Date) - $started).TotalSeconds)
Write-Host "csharp-tests (Windows): $($passed.Count) passed, $($failed.Count) failed, $($skipped.Count) skipped"
