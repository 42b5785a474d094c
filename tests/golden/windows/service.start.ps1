$ErrorActionPreference = 'Stop'
$svc = Get-Service -Name 'W3SVC'
if ($svc.Status -eq 'Running') {
    $changed = $false
} else {
    Start-Service -InputObject $svc
    $svc.WaitForStatus('Running', [TimeSpan]::FromSeconds(60))
    $changed = $true
}
$svc.Refresh()
[pscustomobject]@{ changed = $changed; state = $svc.Status.ToString() } | ConvertTo-Json -Compress
