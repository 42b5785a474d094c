{% if params.creates %}
if [ -e {{ params.creates }} ]; then
    echo 'OPSC_OUTPUT changed=false'
    exit 0
fi
{% endif %}
{% if params.removes %}
if [ ! -e {{ params.removes }} ]; then
    echo 'OPSC_OUTPUT changed=false'
    exit 0
fi
{% endif %}
{% if params.cwd %}
cd {{ params.cwd }} || exit
{% endif %}
{% for name, value in params.env %}
export {{ name ~ '=' ~ value }}
{% endfor %}
