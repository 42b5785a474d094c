$ErrorActionPreference = 'Stop'
$names = @('Web-Server', 'Web-Asp-Net45')
$restart = $false
if (Get-Command -Name Install-WindowsFeature -ErrorAction SilentlyContinue) {
    $todo = @(Get-WindowsFeature -Name $names | Where-Object { -not $_.Installed } | ForEach-Object { $_.Name })
    if ($todo.Count -gt 0) {
        $result = Install-WindowsFeature -Name $todo -IncludeManagementTools
        if (-not $result.Success) { throw "Install-WindowsFeature failed with exit code $($result.ExitCode)" }
        $restart = [string]$result.RestartNeeded -eq 'Yes'
    }
} else {
    $todo = @($names | Where-Object { (Get-WindowsOptionalFeature -Online -FeatureName $_).State -ne 'Enabled' })
    if ($todo.Count -gt 0) {
        $result = Enable-WindowsOptionalFeature -Online -FeatureName $todo -NoRestart
        $restart = [bool]$result.RestartNeeded
    }
}
[pscustomobject]@{ changed = $todo.Count -gt 0; restart_needed = $restart; features = $todo } | ConvertTo-Json -Compress
