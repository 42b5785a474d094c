$ErrorActionPreference = 'Stop'
$svc = Get-Service -Name {{ params.name }}
Restart-Service -InputObject $svc -Force
$svc.WaitForStatus('Running', [TimeSpan]::FromSeconds({{ params.timeout_s }}))
$svc.Refresh()
[pscustomobject]@{ changed = $true; state = $svc.Status.ToString() } | ConvertTo-Json -Compress
