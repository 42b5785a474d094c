$ErrorActionPreference = 'Stop'
$svc = Get-Service -Name {{ params.name }}
if ($svc.Status -eq 'Running') {
    $changed = $false
} else {
    Start-Service -InputObject $svc
    $svc.WaitForStatus('Running', [TimeSpan]::FromSeconds({{ params.timeout_s }}))
    $changed = $true
}
$svc.Refresh()
[pscustomobject]@{ changed = $changed; state = $svc.Status.ToString() } | ConvertTo-Json -Compress
