if (-not (Test-Path -LiteralPath '/tmp/todo.flag')) { 'OPSC_OUTPUT changed=false'; exit 0 }
[Environment]::SetEnvironmentVariable('PYTHONUNBUFFERED', '1', 'Process')
$opscScript = Join-Path ([IO.Path]::GetTempPath()) ('opsc-script-' + [guid]::NewGuid().ToString('N') + '.ps1')
try {
    [IO.File]::WriteAllText($opscScript, '#!/usr/bin/env python3
import sys
print("args:", sys.argv[1:])
print("it''s fine; $(true) `true`")
', (New-Object System.Text.UTF8Encoding $false))
    'OPSC_OUTPUT changed=true'
    $global:LASTEXITCODE = 0
    & '/usr/bin/python3' $opscScript '--name' 'web 1'
    $opscStatus = $LASTEXITCODE
} finally {
    Remove-Item -LiteralPath $opscScript -Force -ErrorAction SilentlyContinue
}
exit $opscStatus
