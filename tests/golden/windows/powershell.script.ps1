Set-Location -LiteralPath 'C:\Temp'
[Environment]::SetEnvironmentVariable('APP_ENV', 'prod', 'Process')
'OPSC_OUTPUT changed=true'
$global:LASTEXITCODE = 0
$opscBlock = [scriptblock]::Create('param($Name)
Write-Output "Hello, $Name"
Get-Date -Format o')
& $opscBlock 'it''s me; $(Stop-Computer)'
exit $LASTEXITCODE
