if [ -e '/var/run/reloaded.flag' ]; then
    echo 'OPSC_OUTPUT changed=false'
    exit 0
fi
cd '/etc/nginx' || exit
export 'LANG=C'
export 'NOTE=it'\''s $(not) run'
echo 'OPSC_OUTPUT changed=true'
systemctl reload nginx && echo reloaded 'it'\''s; rm -rf / #'
