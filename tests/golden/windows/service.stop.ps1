$ErrorActionPreference = 'Stop'
$svc = Get-Service -Name 'Spooler'
if ($svc.Status -eq 'Stopped') {
    $changed = $false
} else {
    Stop-Service -InputObject $svc -Force
    $svc.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(30))
    $changed = $true
}
$svc.Refresh()
[pscustomobject]@{ changed = $changed; state = $svc.Status.ToString() } | ConvertTo-Json -Compress
