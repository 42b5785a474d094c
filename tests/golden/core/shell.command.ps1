if (Test-Path -LiteralPath '/var/run/reloaded.flag') { 'OPSC_OUTPUT changed=false'; exit 0 }
Set-Location -LiteralPath '/etc/nginx'
[Environment]::SetEnvironmentVariable('LANG', 'C', 'Process')
[Environment]::SetEnvironmentVariable('NOTE', 'it''s $(not) run', 'Process')
'OPSC_OUTPUT changed=true'
$global:LASTEXITCODE = 0
systemctl reload nginx && echo reloaded 'it''s; rm -rf / #'
exit $LASTEXITCODE
