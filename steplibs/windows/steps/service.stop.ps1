$ErrorActionPreference = 'Stop'
$svc = Get-Service -Name {{ params.name }}
if ($svc.Status -eq 'Stopped') {
    $changed = $false
} else {
    Stop-Service -InputObject $svc -Force
    $svc.WaitForStatus('Stopped', [TimeSpan]::FromSeconds({{ params.timeout_s }}))
    $changed = $true
}
$svc.Refresh()
[pscustomobject]@{ changed = $changed; state = $svc.Status.ToString() } | ConvertTo-Json -Compress
