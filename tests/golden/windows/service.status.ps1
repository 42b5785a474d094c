$ErrorActionPreference = 'Stop'
$svc = Get-Service -Name 'WinRM'
[pscustomobject]@{
    state = $svc.Status.ToString()
    start_type = $svc.StartType.ToString()
    running = $svc.Status -eq 'Running'
} | ConvertTo-Json -Compress
