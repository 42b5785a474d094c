$ErrorActionPreference = 'Stop'
$svc = Get-Service -Name 'W3SVC'
Restart-Service -InputObject $svc -Force
$svc.WaitForStatus('Running', [TimeSpan]::FromSeconds(60))
$svc.Refresh()
[pscustomobject]@{ changed = $true; state = $svc.Status.ToString() } | ConvertTo-Json -Compress
